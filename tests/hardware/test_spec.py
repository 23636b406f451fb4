"""DeviceSpec: one device description; the comparison names every mismatched field; malformed ones are refused."""

from __future__ import annotations

import dataclasses

import pytest

from sensorimotor.hardware.messages import Describe
from sensorimotor.hardware.spec import (
    COMPARED_FIELDS,
    Actuator,
    Camera,
    Channel,
    DeviceSpec,
    Encoder,
    SpecError,
    compare,
)
from sensorimotor.sim.config import DeviceConfig

SPEC = DeviceConfig().spec()
# A consistent change of each compared field (samples_per_frame moves with imu_rate_hz).
CHANGES = {
    "protocol_version": {"protocol_version": 2},
    "imu_rate_hz": {"imu_rate_hz": 2000, "samples_per_frame": 20},
    "imu_channels": {"imu_channels": (*SPEC.imu_channels[:5], Channel("accel_z", "g"))},
    "imu_window": {"imu_window": 32},
    "samples_per_frame": {"imu_rate_hz": 500, "samples_per_frame": 5},
    "stream_rate_hz": {"stream_rate_hz": 200, "samples_per_frame": 5},
    "control_rate_hz": {"control_rate_hz": 50},
    "encoders[0]": {"encoders": (Encoder("arm", 4096, 3.0),)},
    "encoders": {"encoders": (Encoder("arm", 2048), Encoder("wheel", 2048))},
    "camera": {"camera": Camera(48, 64, 50)},
}
CHANGES_TOO = {  # the same field names a change of rate, or a camera gone
    "camera": {"camera": None},
    "camera ": {"camera": Camera(64, 64, 5)},
}


def test_every_compared_field_has_a_case() -> None:
    assert set(COMPARED_FIELDS) | {"imu_channels", "encoders", "encoders[0]"} == set(CHANGES)


def test_what_the_host_need_not_compare() -> None:
    """A channel's wire encoding and an encoder's limit are the device's to choose: the model sees SI units."""
    counted = tuple(Channel(c.name, c.unit, "i16", 0.001) for c in SPEC.imu_channels)
    device = dataclasses.replace(SPEC, imu_channels=counted, encoders=(Encoder("arm", 2048, 1.5),))
    assert compare(SPEC, device) == []
    assert compare(SPEC, dataclasses.replace(SPEC, camera=None)) == [
        "camera: model expects a 64x64 camera at 50 Hz, device has no camera"
    ]


@pytest.mark.parametrize("field", sorted(CHANGES) + sorted(CHANGES_TOO))
def test_compare_names_the_changed_field(field: str) -> None:
    device = dataclasses.replace(SPEC, **{**CHANGES, **CHANGES_TOO}[field])
    problems = compare(SPEC, device)
    assert any(p.startswith(f"{field.strip()}:") for p in problems), problems
    assert compare(SPEC, SPEC) == []


def test_actuators_compare_by_count_and_containment() -> None:
    wider = dataclasses.replace(SPEC, actuators=(Actuator("motor", "V", -12.0, 12.0),))
    narrower = dataclasses.replace(SPEC, actuators=(Actuator("motor", "V", -3.0, 3.0),))
    two = dataclasses.replace(SPEC, actuators=(*SPEC.actuators, Actuator("brake", "V", 0.0, 1.0)))
    assert compare(SPEC, wider) == []  # the device accepts more than the model commands
    assert any(p.startswith("actuators[0] range") for p in compare(SPEC, narrower))
    assert any(p.startswith("actuators: model drives 1, device has 2") for p in compare(SPEC, two))


def test_name_and_watchdog_are_not_compared() -> None:
    assert compare(SPEC, dataclasses.replace(SPEC, name="lab-rig-3", watchdog_ms=50)) == []


def test_dict_and_wire_round_trips() -> None:
    assert DeviceSpec.from_dict(SPEC.to_dict()) == SPEC
    assert Describe.unpack(Describe(SPEC).pack()).spec == SPEC


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("imu_window"), "missing fields ['imu_window']"),
        (lambda d: d.update(extra=1), "unknown fields ['extra']"),
        (lambda d: d.update(samples_per_frame=3), "samples_per_frame"),
        (lambda d: d.update(camera={"height": 0, "width": 64, "rate_hz": 50}), "camera.height"),
        (lambda d: d.update(actuators=[{"name": "motor"}]), "malformed channel, encoder, camera or actuator"),
        (lambda d: d.update(encoders=[{"name": "arm", "cpr": 0, "limit_rad": 0.0}]), r"encoders[0]: cpr"),
        (lambda d: d.update(stream_rate_hz="fast"), "stream_rate_hz"),
    ],
)
def test_malformed_description_names_the_field(mutate, field: str) -> None:
    data = SPEC.to_dict()
    mutate(data)
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        DeviceSpec.from_dict(data)


def test_a_description_from_before_the_sensor_declarations_is_read_as_the_qube_layout() -> None:
    """Models exported before version 3 declared its sensors keep loading: one float32 IMU, one encoder, a camera."""
    old = {k: v for k, v in SPEC.to_dict().items() if k not in ("encoders", "camera")}
    old["imu_channels"] = [{"name": c.name, "unit": c.unit} for c in SPEC.imu_channels]
    old.update(encoder_cpr=2048, image_height=64, image_width=64, camera_rate_hz=50)
    spec = DeviceSpec.from_dict(old)
    assert compare(spec, SPEC) == [] and spec.camera == SPEC.camera and spec.encoders[0].cpr == 2048
    with pytest.raises(SpecError, match=r"unknown fields \['encoder_cpr'\]"):  # a half-old one is not guessed at
        DeviceSpec.from_dict({**SPEC.to_dict(), "encoder_cpr": 2048})


def test_config_change_reaches_the_spec() -> None:
    cfg = dataclasses.replace(DeviceConfig(), stream_rate_hz=200)
    spec = cfg.spec()
    assert (spec.stream_rate_hz, spec.samples_per_frame, spec.control_rate_hz) == (200, 5, 200)
