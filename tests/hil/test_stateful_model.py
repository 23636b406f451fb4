"""A model with recurrent state: onnxruntime runs it, the loop carries and logs the state, replay reproduces it.

The model is real (torch -> ONNX -> onnxruntime): an exponential filter of the IMU window's
mean in its state, and volts that depend on the state, so a runtime that dropped or mixed
up the state would change the commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from sensorimotor.control.export import export_onnx
from sensorimotor.hardware.errors import ModelError
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_ESTIMATE, iter_log
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.sim.config import DeviceConfig

MEMORY = 6


class FilteredImu(nn.Module):
    """memory_next = 0.9 memory + 0.1 mean(imu window); volts from the filtered IMU."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.out = nn.Linear(MEMORY, 1)

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor, image: torch.Tensor, memory: torch.Tensor):
        memory_next = 0.9 * memory + 0.1 * imu.mean(-1)
        volts = torch.clamp(self.out(memory_next), -1.0, 1.0) * 2.0
        estimates = torch.cat([memory_next[:, :2], encoder[:, 0, -1:] * 0.0], dim=-1)
        return volts, estimates, memory_next


@pytest.fixture(scope="module")
def stateful_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stateful") / "policy.onnx"
    export_onnx(FilteredImu(), DeviceConfig(), path, estimates=("m0", "m1", "zero"), states=(("memory", MEMORY),))
    return path


def _hw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensorimotor.cli.hw", *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_the_runtime_carries_the_state_from_zeros(stateful_model: Path) -> None:
    policy = OnnxPolicy(stateful_model)
    assert policy.state_names == ("memory",) and policy.state_values == {"memory": [0.0] * MEMORY}
    inputs = {"imu": np.ones((1, 6, 64), np.float32), "encoder": np.zeros((1, 1, 64), np.float32),
              "image": np.zeros((1, 1, 64, 64), np.uint8)}  # fmt: skip
    first, _ = policy.run(inputs)
    assert np.allclose(policy.state_values["memory"], 0.1)
    second, _ = policy.run(inputs)  # same inputs, another state: another command
    assert np.allclose(policy.state_values["memory"], 0.19) and not np.allclose(first, second)
    policy.reset_state()
    again, _ = policy.run(inputs)
    np.testing.assert_array_equal(again, first)


def test_hw_run_logs_the_state_and_replay_reproduces_it(stateful_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "run.mcap"
    run = _hw(
        "run",
        "--twin",
        "--model",
        str(stateful_model),
        "--duration",
        "2",
        "--record",
        str(log),
        "--set",
        "loop.arm_limit_rad=100",
        "--set",
        "loop.fall_stop_deg=180",
    )  # the log is under test
    assert run.returncode in (0, 1), run.stderr[-2000:]
    states = [m.json()["state"] for m in iter_log(log) if m.topic == TOPIC_ESTIMATE]
    assert len(states) > 100 and all(s[0]["name"] == "memory" and len(s[0]["values"]) == MEMORY for s in states)
    assert states[-1][0]["values"] != states[0][0]["values"]  # the state moved
    out = tmp_path / "replay.json"
    replay = _hw("replay", str(log), "--model", str(stateful_model), "--json", str(out))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    result = json.loads(out.read_text())
    assert result["reproduced"] and result["state_checked"] == len(states) and result["state_divergence"] == 0.0
    assert "model state (memory)" in replay.stdout


def test_a_state_input_without_its_output_is_refused(stateful_model: Path, tmp_path: Path) -> None:
    model = onnx.load(str(stateful_model))
    model.graph.node.append(onnx.helper.make_node("Identity", ["memory_next"], ["memory_out"]))
    model.graph.output[2].name = "memory_out"  # the state comes back under another name than memory_next
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ModelError, match="for each state input NAME an output NAME_next"):
        OnnxPolicy(bad)


def test_the_filters_of_the_product_run_on_the_twin_and_replay_exactly(tmp_path: Path) -> None:
    """The observation model with the IMU and fused filters (perception/filter.py), exported by PolicyChain."""
    from sensorimotor.control.config import ExperimentConfig
    from sensorimotor.control.export import PolicyChain
    from sensorimotor.control.train import observation_model
    from sensorimotor.perception.config import OBS_NAMES
    from sensorimotor.perception.filter import FUSED_STATE_SIZE, STATE_NAME, STATE_SIZE
    from sensorimotor.perception.models import Perception

    cfg = ExperimentConfig()
    dev = cfg.device
    torch.manual_seed(0)
    obs = observation_model(cfg, Perception())  # the product's: the IMU and fused filters, by default
    model = tmp_path / "policy.onnx"
    export_onnx(PolicyChain(obs, nn.Linear(len(OBS_NAMES), 1), dev.v_max).eval(), dev, model)
    log = tmp_path / "run.mcap"
    run = _hw("run", "--twin", "--model", str(model), "--duration", "2", "--record", str(log),
              "--set", "loop.arm_limit_rad=100", "--set", "loop.fall_stop_deg=180")  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-2000:]
    states = [m.json()["state"] for m in iter_log(log) if m.topic == TOPIC_ESTIMATE]
    values = np.array([s[0]["values"] for s in states if s])
    assert len(values) > 100 and all(s[0]["name"] == STATE_NAME for s in states if s)
    assert values.shape[1] == STATE_SIZE + FUSED_STATE_SIZE  # both filters started and ran
    assert values[-1, 0] == 1.0 and values[-1, STATE_SIZE] == 1.0
    out = tmp_path / "replay.json"
    replay = _hw("replay", str(log), "--model", str(model), "--json", str(out))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    result = json.loads(out.read_text())
    assert result["reproduced"] and result["state_checked"] == len(values) and result["state_divergence"] == 0.0


def test_a_policy_with_history_runs_on_the_twin_logs_its_past_and_replays_exactly(tmp_path: Path) -> None:
    """rl.history: the policy's past (observations, commands) is one more state, logged and replayed like the filter's."""
    from sensorimotor.control.config import ExperimentConfig
    from sensorimotor.control.export import HISTORY_STATE, PolicyChain
    from sensorimotor.control.train import observation_model
    from sensorimotor.perception.config import OBS_NAMES
    from sensorimotor.perception.models import Perception

    cfg = ExperimentConfig()
    dev = cfg.device
    torch.manual_seed(0)
    k, step = 4, len(OBS_NAMES) + 1
    chain = PolicyChain(observation_model(cfg, Perception()), nn.Linear(len(OBS_NAMES) + k * step, 1), dev.v_max,
                        history=k)  # fmt: skip
    model = tmp_path / "policy.onnx"
    export_onnx(chain.eval(), dev, model)
    log = tmp_path / "run.mcap"
    run = _hw("run", "--twin", "--model", str(model), "--duration", "1", "--record", str(log),
              "--set", "loop.arm_limit_rad=100", "--set", "loop.fall_stop_deg=180")  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-2000:]
    requested = {m.json()["cycle"]: m.json()["requested_volts"][0] for m in iter_log(log) if m.topic == TOPIC_COMMAND}
    logged = [m.json() for m in iter_log(log) if m.topic == TOPIC_ESTIMATE and m.json()["state"]]
    pasts = [next(s["values"] for s in e["state"] if s["name"] == HISTORY_STATE) for e in logged]
    assert len(pasts) > 50 and all(len(p) == k * step for p in pasts)
    # each cycle's past starts with the command the model gave that cycle (normalized), then the older steps
    volts = np.array([requested[e["cycle"]] for e in logged])
    np.testing.assert_allclose([p[len(OBS_NAMES)] for p in pasts], volts / dev.v_max, atol=1e-6)
    assert np.abs(volts).max() > 0.1  # the commands (and so the past) are not all zeros
    np.testing.assert_array_equal([p[step:] for p in pasts[1:]], [p[: (k - 1) * step] for p in pasts[:-1]])
    out = tmp_path / "replay.json"
    replay = _hw("replay", str(log), "--model", str(model), "--json", str(out))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    result = json.loads(out.read_text())
    assert result["reproduced"] and result["state_checked"] == len(pasts) and result["state_divergence"] == 0.0
