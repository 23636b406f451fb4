"""DeviceSpec: one device description; the comparison names every mismatched field; malformed ones are refused."""

from __future__ import annotations

import dataclasses

import pytest

from sensorimotor.hardware.messages import Describe
from sensorimotor.hardware.spec import COMPARED_FIELDS, Actuator, Channel, DeviceSpec, SpecError, compare
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
    "encoder_cpr": {"encoder_cpr": 4096},
    "image_height": {"image_height": 48},
    "image_width": {"image_width": 32},
    "camera_rate_hz": {"camera_rate_hz": 5},
}


def test_every_compared_field_has_a_case() -> None:
    assert set(CHANGES) == set(COMPARED_FIELDS)


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_compare_names_the_changed_field(field: str) -> None:
    device = dataclasses.replace(SPEC, **CHANGES[field])
    problems = compare(SPEC, device)
    assert any(p.startswith(f"{field}:") for p in problems), problems
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
        (lambda d: d.update(image_height=0), "image_height"),
        (lambda d: d.update(actuators=[{"name": "motor"}]), "malformed channel or actuator list"),
        (lambda d: d.update(stream_rate_hz="fast"), "stream_rate_hz"),
    ],
)
def test_malformed_description_names_the_field(mutate, field: str) -> None:
    data = SPEC.to_dict()
    mutate(data)
    with pytest.raises(SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        DeviceSpec.from_dict(data)


def test_config_change_reaches_the_spec() -> None:
    cfg = dataclasses.replace(DeviceConfig(), stream_rate_hz=200)
    spec = cfg.spec()
    assert (spec.stream_rate_hz, spec.samples_per_frame, spec.control_rate_hz) == (200, 5, 200)
