"""The balancer end to end over a real pty: ``hw run --twin --config configs/balancer.yaml`` drives both wheel
motors from its two unbounded wheel encoders and its IMU (no camera), the twin judges the run by the balancer's
task, the log replays bit for bit, and a Furuta model is refused for it (naming the difference).

The model is untrained (the hil tests check the link, the runtime and the replay; bench_balancer scores
control)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

pytestmark = pytest.mark.hil
pytest.importorskip("mujoco")

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "balancer.yaml"


def _hw(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("lockstep", [False, True], ids=["real-time", "lockstep"])
def test_hw_run_drives_the_balancer_twin_and_replay_reproduces(
    balancer_model: Path, tmp_path: Path, lockstep: bool
) -> None:  # fmt: skip
    log, summary = tmp_path / "run.mcap", tmp_path / "run.json"
    # untrained: its pitch estimate means nothing, so no fall stop on it
    proc = _hw("run", "--twin", "--config", CONFIG, "--model", balancer_model, "--duration", "2", "--record", log,
               "--json", summary, *LINK_ONLY, *(["--lockstep"] if lockstep else []),
               "--set", "loop.fall_stop_deg=0")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads(summary.read_text())
    twin = s["twin"]
    assert s["device"] == "balancer-twin" and s["commands"] > 150 and s["frames_lost"] == 0
    assert twin["commands_applied"] >= s["commands"] and twin["task"] == "balance"
    assert twin["verdict"].startswith("balance: ") and "|pitch| (deg)" in twin["details"]
    assert twin["streaming_s"] == pytest.approx(2.0, abs=0.2)
    assert set(twin["physics"]) >= {"mb", "lb", "rw", "Rm", "kt", "km", "v_deadzone"}
    assert f"twin: {twin['verdict']}; upright" in proc.stdout  # the summary prints what the twin said
    replayed = _hw("replay", log, "--model", balancer_model, "--json", tmp_path / "replay.json")
    assert replayed.returncode == 0 and "reproduced" in replayed.stdout, replayed.stdout + replayed.stderr
    r = json.loads((tmp_path / "replay.json").read_text())
    assert r["commands"] == s["commands"] and r["reproduced"] and r["max_divergence_v"] <= 1e-5


def test_a_furuta_model_is_refused_for_the_balancer(small_model: Path) -> None:
    proc = _hw("run", "--twin", "--config", CONFIG, "--model", small_model, "--duration", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "encoders: model reads 1, device has 2" in proc.stderr, proc.stderr


def test_the_firmware_in_the_loop_is_refused_for_the_balancer(balancer_model: Path, tmp_path: Path) -> None:
    fake = tmp_path / "smp_native"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    proc = _hw("run", "--twin", "--config", CONFIG, "--model", balancer_model, "--firmware", fake, "--duration", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "plays the furuta's hardware only" in proc.stderr, proc.stderr
