"""Scoring on the held-out zoo and the robustness map, with the classical controller on the true state as the policy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sensorimotor.configs.schema import ConfigError
from sensorimotor.control.config import ClassicalConfig, load_experiment
from sensorimotor.control.heldout import score_zoo
from sensorimotor.control.oracle import BatchEnergyLqr, OracleBudget, coords_of, gains_of
from sensorimotor.control.robustness import Axis, parse_axis, sweep, table, write
from sensorimotor.sim.zoo import ZooDevice

SMALL = OracleBudget(popsize=6, generations=3, episodes=4, verify_episodes=8)


@pytest.fixture(scope="module")
def cfg():
    return load_experiment(preset="quick", overrides=["task.reach_s=6", "task.hold_s=2"])


def classical_on_truth(cfg):
    """The classical controller tuned for the nominal device, fed the true state: a policy that needs no training."""
    gains = gains_of(coords_of(ClassicalConfig())[None])
    cache: dict[int, BatchEnergyLqr] = {}

    def policy(raw: dict[str, np.ndarray]) -> np.ndarray:
        n = len(raw["state"])
        if n not in cache:
            cache[n] = BatchEnergyLqr(cfg.device, {k: np.repeat(v, n) for k, v in gains.items()})
        return cache[n](raw["state"])

    return policy


def test_infeasible_devices_are_not_held_against_the_policy(cfg) -> None:
    zoo = [
        ZooDevice("nominal", {}, {}, ()),  # inside the training ranges: not held out
        ZooDevice("deadzone-x2", {"device.physics.v_deadzone": 0.1}, {}, ("device.physics.v_deadzone",)),
        ZooDevice(
            "vendor-damping", {"device.physics.Dp": 0.0005, "device.physics.Dr": 0.0015}, {}, ("device.physics.Dp",)
        ),
    ]
    result = score_zoo(classical_on_truth(cfg), cfg, episodes=4, zoo=zoo, budget=SMALL, progress=False)
    rows = {r["name"]: r for r in result["heldout"]}
    assert rows["nominal"]["passed"] and rows["nominal"]["feasible"]
    assert rows["vendor-damping"]["success_rate"] == 0.0 and not rows["vendor-damping"]["feasible"]
    assert rows["vendor-damping"]["verdict"].startswith("cannot be done at +-5 V")
    assert rows["deadzone-x2"]["passed"]
    assert result["heldout_counted"] == 1 and result["heldout_passed"] == 1 and result["heldout_infeasible"] == 1
    assert result["heldout_success"] == rows["deadzone-x2"]["success_rate"]


def test_robustness_map_marks_where_the_policy_breaks(cfg, tmp_path) -> None:
    axis = Axis("device.physics.Dp", (1.0, 12.0))
    result = sweep(classical_on_truth(cfg), cfg, (axis,), episodes=4, budget=SMALL, progress=False)
    assert result["success_rate"][0] >= 0.8 and result["feasible"][0]
    assert result["success_rate"][1] < 0.8 and not result["feasible"][1]
    write(result, tmp_path, "classical on truth")
    assert json.loads((tmp_path / "robustness.json").read_text()) == result
    assert "(n/a)" in (tmp_path / "robustness.md").read_text()
    assert (tmp_path / "robustness.png").stat().st_size > 0


def test_axis_parsing() -> None:
    a = parse_axis("device.physics.Dp=0.5:2:3")
    assert a.path == "device.physics.Dp" and np.allclose(a.factors, (0.5, 1.0, 2.0))
    assert parse_axis("device.physics.Rm=0.5,1").factors == (0.5, 1.0)
    for bad in ("device.physics.Dp", "device.physics.Dp=0:2", "device.physics.Dp=2:1", "x=a,b", "x=1:2:3:4"):
        with pytest.raises(ConfigError, match="--axis"):
            parse_axis(bad)


def test_table_two_axes() -> None:
    result = {"axes": [{"path": "device.physics.Dp", "factors": [1.0, 4.0]},
                       {"path": "device.physics.Rm", "factors": [0.5, 1.0]}],
              "success_rate": [[1.0, 0.9], [0.2, 0.0]], "feasible": [[True, True], [True, False]]}  # fmt: skip
    text = table(result)
    assert "| physics.Dp \\ physics.Rm | 0.5x | 1x |" in text
    assert "| 4x | 20% | 0% (n/a) |" in text


def test_one_batched_simulation_scores_each_device_as_it_would_alone(cfg) -> None:
    """Each row carries its own device: the batched rates agree with scoring the devices one by one."""
    from sensorimotor.control.heldout import score_device, score_devices
    from sensorimotor.sim.zoo import with_values

    policy = classical_on_truth(cfg)
    devices_ = [
        cfg.device,
        with_values(cfg.device, {"device.physics.Dp": 0.0005, "device.physics.Dr": 0.0015}),  # nothing swings it up
        with_values(
            cfg.device, {"device.physics.v_deadzone": 0.1, "device.randomization.action_delay_substeps": [6, 6]}
        ),
    ]
    batched = score_devices(policy, cfg, devices_, episodes=6, seed=5)
    alone = [score_device(policy, cfg, d, episodes=6, seed=5) for d in devices_]
    assert batched is not None and batched[1] == alone[1] == 0.0
    assert batched[0] >= 0.8 and alone[0] >= 0.8 and batched[2] >= 0.8 and alone[2] >= 0.8
    # a device that differs in what a row cannot carry (the IMU window) is scored one by one instead
    other = with_values(cfg.device, {"device.imu.window": 32})
    assert score_devices(policy, cfg, [cfg.device, other], episodes=2, seed=5) is None
