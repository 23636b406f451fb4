"""The built wheel installs and runs on its own, next to python-control, without the training stack.

This proves two things about the *installed* product (a wheel in a fresh virtual environment, used
from a directory outside the repository, so nothing is imported from the source tree):

* the ``sensorimotor`` namespace does not clash with PyPI: ``control`` (python-control) and
  ``sensorimotor.control`` import side by side in the same interpreter;
* the runtime install (no ``[train]`` extra: no torch, stable-baselines3 or gymnasium) runs the
  robot-side commands: ``hw run --twin`` with the config shipped inside the package, then
  ``hw replay`` of the recorded log reproduces every command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

pytestmark = [pytest.mark.slow, pytest.mark.install]

ROOT = Path(__file__).resolve().parents[1]
PIP_TIMEOUT_S = 900.0
HW_TIMEOUT_S = 300.0
TRAINING_STACK = ("torch", "stable_baselines3", "gymnasium")
STDERR_TAIL_CHARS = 3000


def _run(cmd: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd``; fail the test with the command and the tail of its output unless it exits 0."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    args = [str(c) for c in cmd]
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"`{' '.join(args)}` exited {proc.returncode}\n"
        f"--- stdout (tail) ---\n{proc.stdout[-STDERR_TAIL_CHARS:]}\n"
        f"--- stderr (tail) ---\n{proc.stderr[-STDERR_TAIL_CHARS:]}"
    )
    return proc


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the project's wheel (runtime dependencies only) and python-control."""
    base = tmp_path_factory.mktemp("install")
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
          "--no-build-isolation", "-w", wheels, ROOT], cwd=base, timeout=PIP_TIMEOUT_S)  # fmt: skip
    (wheel,) = wheels.glob("sensorimotor-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=base, timeout=PIP_TIMEOUT_S)
    bin_dir = venv / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, "control"],
         cwd=base, timeout=PIP_TIMEOUT_S)  # fmt: skip
    return bin_dir


def test_namespace_does_not_clash_with_python_control_and_training_stack_is_absent(
    runtime_venv: Path, tmp_path: Path
) -> None:
    code = (
        "import importlib.resources, importlib.util, json\n"
        "import control\n"
        "import sensorimotor.cli.sim, sensorimotor.cli.hw, sensorimotor.sim.twin\n"
        "print(json.dumps({\n"
        "    'control_file': control.__file__,\n"
        "    'has_lqr': hasattr(control, 'lqr'),\n"
        "    'cli_file': sensorimotor.cli.sim.__file__,\n"
        "    'weights': [str(p) for p in importlib.resources.files('sensorimotor.perception').joinpath('pretrained')"
        ".iterdir()],\n"
        f"    'present': [m for m in {TRAINING_STACK!r} if importlib.util.find_spec(m) is not None],\n"
        "}))\n"
    )
    out = json.loads(_run([runtime_venv / "python", "-c", code], cwd=tmp_path, timeout=HW_TIMEOUT_S).stdout)
    assert out["has_lqr"], f"`control` is not python-control: {out['control_file']}"
    assert Path(out["cli_file"]).is_relative_to(runtime_venv.parent), (
        f"imported from outside the venv: {out['cli_file']}"
    )
    assert not Path(out["cli_file"]).is_relative_to(ROOT), f"imported from the source tree: {out['cli_file']}"
    assert out["present"] == [], f"the runtime install pulled in the training stack: {out['present']}"
    assert [Path(w).name for w in out["weights"]] == ["encoders.pt"], "the wheel lacks the shipped encoders"


def test_hw_run_on_the_twin_and_replay_from_the_runtime_install(
    runtime_venv: Path, small_model: Path, tmp_path: Path
) -> None:
    hw = runtime_venv / "hw"
    log, run_json, replay_json = tmp_path / "run.mcap", tmp_path / "run.json", tmp_path / "replay.json"

    _run([hw, "run", "--twin", "--model", small_model, "--duration", "2", "--record", log, "--json", run_json,
          *LINK_ONLY], cwd=tmp_path, timeout=HW_TIMEOUT_S)  # fmt: skip
    run = json.loads(run_json.read_text())
    assert run["commands"] > 100, run
    assert run["frames_lost"] == 0, run

    _run([hw, "replay", log, "--model", small_model, "--json", replay_json], cwd=tmp_path, timeout=HW_TIMEOUT_S)
    replayed = json.loads(replay_json.read_text())
    assert replayed["reproduced"] is True, replayed
