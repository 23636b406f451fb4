"""benchmarks/bench_zoo_ablate.py: its variants split a zoo device's values into groups without loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_zoo_ablate import GROUPS, group_of, main, variants
from sensorimotor.control.config import load_experiment
from sensorimotor.sim.zoo import devices, load_zoo


def test_every_zoo_value_has_a_group_and_each_split_adds_up_to_the_device() -> None:
    base = load_experiment("configs/furuta.yaml").device
    zoo = devices(load_zoo(), base)
    assert {group_of(p) for zd in zoo for p in zd.values} == set(GROUPS)  # every group used, no "other"
    for zd in zoo:
        v = variants(zd)
        assert v["all"] == zd.values
        for label, only in v.items():
            if label.startswith("only "):
                rest = v["all but " + label.removeprefix("only ")]
                assert only and rest.keys().isdisjoint(only) and {**only, **rest} == zd.values


def test_a_folder_that_is_not_a_run_is_refused_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["bench_zoo_ablate", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2 and "no policy.onnx" in capsys.readouterr().err
