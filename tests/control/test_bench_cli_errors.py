"""The sim-to-real benchmarks name bad input and exit 2 before any tuning, training or twin starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import bench_arm_room, bench_twin_runs, bench_zoo_adapt


@pytest.mark.parametrize(
    ("main", "argv", "named"),
    [
        (bench_arm_room.main, ["--limits", "1,two"], "--limits '1,two'"),
        (bench_arm_room.main, ["--set", "device.physics.Dp=-1"], "Dp"),
        (bench_arm_room.main, ["EMPTY"], "no policy.onnx"),
        (bench_zoo_adapt.main, ["EMPTY", "--out", "OUT"], "not a finished run"),
        (bench_twin_runs.main, ["EMPTY"], "no policy.onnx"),
    ],
)
def test_bad_input_is_named_with_exit_2(
    main: Callable[[], None], argv: list[str], named: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    argv = [str(tmp_path / a) if a in ("EMPTY", "OUT") else a for a in argv]
    monkeypatch.setattr("sys.argv", ["bench", *argv])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and named in capsys.readouterr().err
    assert not (tmp_path / "OUT").exists()  # nothing written
