"""User mistakes through the real `hw` and `sim` command lines: one line naming the right cause, exit status 2.

Each case was once reported under a wrong cause (issue 36): a folder as "no such config file",
/dev/null as a termios error, an unreadable model as "not a loadable ONNX model", a bad
number after argparse's usage block, onnxruntime's warnings before our line.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sensorimotor.cli import hw as hw_cli
from sensorimotor.cli import sim as sim_cli


def _hw(*args: str, preexec_fn=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", *args],
        capture_output=True, text=True, timeout=120, preexec_fn=preexec_fn,
    )  # fmt: skip


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    return err


def test_a_config_that_is_a_directory_is_named_as_one(small_model: Path, tmp_path: Path, capsys) -> None:
    assert hw_cli.main(["run", "--twin", "--model", str(small_model), "--config", str(tmp_path)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{tmp_path}: is a directory, not a config file" in err and "no such config file" not in err


def test_a_run_folder_as_config_points_at_its_config_file(small_model: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("loop:\n  rate_hz: 100\n")
    assert hw_cli.main(["info", "--twin", "--config", str(tmp_path)]) == 2
    assert f"did you mean {tmp_path / 'config.yaml'}?" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["run", "info"])
def test_a_port_that_is_not_a_serial_port_is_named_so(small_model: Path, command: str, capsys) -> None:
    args = ["--model", str(small_model)] if command == "run" else []
    assert hw_cli.main([command, "--port", "/dev/null", *args]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"hw {command}: error: /dev/null is not a serial port (ENOTTY" in err
    assert "Could not configure port" not in err


BAD_ARGUMENTS = [
    (hw_cli, ["run", "--twin", "--model", "m.onnx", "--rate", "nan"], "hw run: error: argument --rate:"),
    (hw_cli, ["run", "--twin", "--model", "m.onnx", "--rate", "inf"], "hw run: error: argument --rate:"),
    (hw_cli, ["run", "--twin", "--model", "m.onnx", "--rate", "-100"], "hw run: error: argument --rate:"),
    (hw_cli, ["run", "--twin", "--model", "m.onnx", "--duration", "-1"], "hw run: error: argument --duration:"),
    (hw_cli, ["run", "--twin", "--model", "m.onnx", "--duration", "nan"], "hw run: error: argument --duration:"),
    (hw_cli, ["run", "--twin", "--model", "m.onnx", "--twin-garbage", "nan"], "hw run: error: argument --twin-garbage"),
    (hw_cli, ["run", "--twin"], "hw run: error: the following arguments are required: --model"),
    (hw_cli, ["replay", "run.mcap", "--tolerance", "nan"], "hw replay: error: argument --tolerance:"),
    (hw_cli, ["monitor", "--twin", "--every", "-1"], "hw monitor: error: argument --every:"),
    (hw_cli, ["calibrate", "--twin", "--model", "m.onnx", "--min-frames", "-5"], "hw calibrate: error: argument"),
    (hw_cli, ["fly"], "hw: error: argument"),
    (sim_cli, ["eval", "runs/x", "--episodes", "many"], "sim eval: error: argument --episodes:"),
    (sim_cli, ["train", "--algo", "dqn"], "sim train: error: argument --algo:"),
    (sim_cli, ["train", "--bogus"], "sim: error: unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("cli", "argv", "expected"), BAD_ARGUMENTS, ids=[" ".join(a) for _, a, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_one_line_without_the_usage_block(cli, argv: list[str], expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(expected) and "usage:" not in err, err
    assert err.rstrip().endswith("--help)")  # where the usage is, since it is not printed


def test_sim_twin_refuses_a_garbage_probability_that_is_not_one() -> None:
    # In a subprocess: accepted, the twin would serve until stopped.
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.sim", "twin", "--inject-garbage", "nan"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--inject-garbage: must be a probability in [0, 1], got nan" in _one_line(proc.stderr)


def _without_dac_override() -> None:
    """preexec_fn: root loses the capabilities that let it read any file, so mode 000 refuses it like a user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_model_is_named_as_a_permission_problem(small_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "policy.onnx"
    model.write_bytes(small_model.read_bytes())
    model.chmod(0)
    try:
        proc = _hw(
            "run", "--twin", "--model", str(model), preexec_fn=_without_dac_override if os.geteuid() == 0 else None
        )
    except OSError as exc:  # no CAP_SETPCAP in this container: root reads everything, nothing to test
        pytest.skip(f"cannot drop root's file-permission override here ({exc})")
    finally:
        model.chmod(0o644)
    assert proc.returncode == 2, proc.stderr
    err = _one_line(proc.stderr)
    assert f"no permission to read {model}" in err and "not a loadable ONNX model" not in err


def test_onnxruntime_warnings_do_not_come_before_our_line(tmp_path: Path) -> None:
    """A model onnxruntime warns about on load (an unused initializer), which is not ours: only our line shows."""
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy")
    unused = numpy_helper.from_array(np.zeros(3, np.float32), "unused")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y], initializer=[unused])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "foreign.onnx"
    onnx.save(model, str(path))
    proc = _hw("run", "--twin", "--model", str(path))
    assert proc.returncode == 2
    err = _one_line(proc.stderr)
    assert err.startswith(f"hw run: error: {path} has no 'sensorimotor' metadata"), err
