"""benchmarks/bench_arm_room.py: bad input is named and exits 2 before any tuning starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_arm_room import main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--limits", "1,two"], "--limits '1,two'"),
        (["--set", "device.physics.Dp=-1"], "Dp"),
        (["NOT_A_RUN"], "no policy.onnx"),
    ],
)
def test_bad_input_is_named_with_exit_2(
    argv: list[str], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path / a) if a == "NOT_A_RUN" else a for a in argv]
    monkeypatch.setattr("sys.argv", ["bench_arm_room", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and named in capsys.readouterr().err
