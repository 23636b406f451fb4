"""A device that lives outside the package: a reaction-wheel pendulum (MJCF + plug-in + YAML, copied from
tests/control/external_device/ into a temporary folder) picked by ``device.type: path/rwp.py:Class``,
trained by ``sim train`` with a tiny budget, exported, run by ``hw run --twin`` over a pty and replayed
bit for bit, from another working directory and with nothing registered in the package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sensorimotor.sim.config import DeviceSection

pytest.importorskip("mujoco")

HERE = Path(__file__).resolve().parent / "external_device"
CONFIG = """\
device:
  type: {plugin}:ReactionWheelConfig
  physics:
    mw: 0.12
task:
  episode_s: 2.0
perception:
  train_samples: 1024
  finetune_steps: 20
rl:
  total_timesteps: 2048
  n_envs: 8
  ppo:
    n_steps: 128
    batch_size: 256
evaluation:
  episodes: 8
loop:
  v_limit: 6.0
"""


def _cli(tool: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"sensorimotor.cli.{tool}", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_a_device_from_outside_the_package_trains_exports_runs_over_a_pty_and_replays(tmp_path: Path) -> None:
    folder = tmp_path / "my-robot"
    shutil.copytree(HERE, folder)
    config = folder / "rwp.yaml"
    config.write_text(CONFIG.format(plugin=folder / "rwp.py"))
    assert not any("rwp" in name for name in DeviceSection.choices())  # nothing of it in the package
    work = tmp_path / "elsewhere"
    work.mkdir()

    trained = _cli("sim", "train", "--config", config, "--out", "run", cwd=work)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run = work / "run"
    report = json.loads((run / "report.json").read_text())
    assert report["observations"] == ["angle", "rate", "gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z",
                                      "wheel_angle", "wheel_rate"]  # fmt: skip
    assert max(max(p) for p in report["parity"]) < 1e-5 and report["eval"]["episodes"] == 8
    assert "|angle| (deg)" in report["eval"]["final"]

    ran = _cli("hw", "run", "--twin", "--config", run / "config.yaml", "--model", run / "policy.onnx",
               "--duration", "1.5", "--record", "run.mcap", "--json", "run.json", "--lockstep", cwd=work)  # fmt: skip
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr  # 1: unhealthy by the loop's health limits only
    s = json.loads((work / "run.json").read_text())
    assert s["device"] == "rwp-twin" and s["commands"] >= 140 and s["twin"]["commands_applied"] >= s["commands"]
    assert s["twin"]["verdict"].startswith("balance: ") and "|angle| (deg)" in s["twin"]["details"]
    assert s["twin"]["physics"]["mw"] != 0.12  # randomized around the config's value
    replayed = _cli("hw", "replay", "run.mcap", "--model", run / "policy.onnx", cwd=work)
    assert replayed.returncode == 0 and "(reproduced" in replayed.stdout, replayed.stdout + replayed.stderr
