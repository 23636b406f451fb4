"""The device description end to end over a real pty: the twin announces its DeviceSpec, the host
sizes the runtime from it, refuses a model that does not fit (naming the field) and refuses a
bad or foreign model file before anything is sent to a device.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from hil_options import LINK_ONLY

from sensorimotor.hardware.errors import ModelError
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.sim.config import CameraConfig, DeviceConfig, ImuConfig

pytestmark = pytest.mark.hil


def _hw(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", *args], capture_output=True, text=True, timeout=timeout
    )


# Each field of the twin's description changed in turn (through `hw run --set`, which also
# configures the twin it starts); the model trained for the default device must be refused
# with a message naming that field.
FIELD_CHANGES = [
    ("stream_rate_hz", "device.stream_rate_hz=250"),
    ("imu_rate_hz", "device.imu.rate_hz=2000"),
    ("imu_window", "device.imu.window=32"),
    ("samples_per_frame", "device.imu.rate_hz=500"),
    ("camera", "device.camera.height=48"),
    ("camera", "device.camera.rate_hz=5"),
    ("encoders[0]", "device.encoder_cpr=4096"),
    ("actuators[0] range", "device.v_max=3.0"),
    ("protocol_version", "device.protocol_version=2"),
]


@pytest.mark.parametrize(("field", "override"), FIELD_CHANGES, ids=[f for f, _ in FIELD_CHANGES])
def test_model_is_refused_naming_the_changed_field(small_model: Path, field: str, override: str) -> None:
    proc = _hw("run", "--twin", "--model", str(small_model), "--duration", "1", "--set", override)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{field}:" in proc.stderr or f"{field} " in proc.stderr, proc.stderr


def test_runtime_follows_the_handshake_for_another_window_image_and_camera_rate(tmp_path: Path, export_model) -> None:
    """A device with a 32-sample IMU window, a 48x64 camera at 25 Hz: no change in hardware/ needed."""
    device = dataclasses.replace(
        DeviceConfig(), imu=dataclasses.replace(ImuConfig(), window=32),
        camera=dataclasses.replace(CameraConfig(), rate_hz=25, height=48, width=64),
    )  # fmt: skip
    model = export_model(device, tmp_path / "other.onnx")
    config = tmp_path / "other.yaml"
    config.write_text("device:\n  imu:\n    window: 32\n  camera:\n    rate_hz: 25\n    height: 48\n    width: 64\n")
    log, summary = tmp_path / "run.mcap", tmp_path / "run.json"
    proc = _hw("run", "--twin", "--config", str(config), "--model", str(model), "--duration", "2",
               "--record", str(log), "--json", str(summary), *LINK_ONLY)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s = json.loads(summary.read_text())
    assert s["commands"] > 150 and s["frames_lost"] == 0 and s["twin"]["commands_applied"] >= s["commands"]
    proc = _hw("replay", str(log), "--model", str(model), "--plot", str(tmp_path / "r.png"))
    assert proc.returncode == 0 and "reproduced" in proc.stdout, proc.stdout + proc.stderr
    # The default device's model does not fit this device, and says why.
    other = export_model(DeviceConfig(), tmp_path / "default.onnx")
    proc = _hw("run", "--twin", "--config", str(config), "--model", str(other), "--duration", "1")
    assert proc.returncode == 2 and "imu_window: model expects 64, device has 32" in proc.stderr, proc.stderr


def _with_metadata(src: Path, dst: Path, value: str | None, edit=None) -> Path:
    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    del model.metadata_props[:]
    if value is not None:
        props["sensorimotor"] = value
    elif edit is not None:
        meta = json.loads(props["sensorimotor"])
        edit(meta)
        props["sensorimotor"] = json.dumps(meta)
    else:
        props.pop("sensorimotor")
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(dst))
    return dst


def _set_window(meta: dict) -> None:
    meta["device"]["imu_window"] = 32  # the graph still takes 64 samples


@pytest.mark.parametrize(
    ("value", "edit", "expected"),
    [
        (None, None, "has no 'sensorimotor' metadata"),
        ("{not json", None, "metadata is not valid JSON"),
        ('{"format": "other.v9"}', None, "metadata format 'other.v9'"),
        ('{"format": "sensorimotor.policy.v2", "device": {}}', None, "malformed device description"),
        (None, _set_window, "imu has shape ['batch', 6, 64], expected ['batch', 6, 32]"),
    ],
    ids=["no-metadata", "bad-json", "foreign-format", "bad-spec", "shape-mismatch"],
)
def test_bad_or_foreign_model_is_refused_at_load(small_model: Path, tmp_path: Path, value, edit, expected: str) -> None:
    path = _with_metadata(small_model, tmp_path / "m.onnx", value, edit)
    with pytest.raises(ModelError) as err:
        OnnxPolicy(path)
    assert expected in str(err.value)
    proc = _hw("run", "--twin", "--model", str(path), "--duration", "1")
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "twin" not in proc.stdout  # refused before a device was started or spoken to
