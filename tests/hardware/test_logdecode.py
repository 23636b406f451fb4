"""Decoded sensor topics: real frames in, per-sample IMU/encoder messages and foxglove.RawImage out, raw frames untouched."""

from __future__ import annotations

import base64
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.hardware.device import frame_body
from sensorimotor.hardware.log.decode import TOPIC_ENCODER, TOPIC_IMAGE, TOPIC_IMU, FrameDecoder
from sensorimotor.hardware.log.mcaplog import TOPIC_RX, TOPIC_TX, LogWriter, iter_log, summarize_log
from sensorimotor.hardware.messages import Describe, ImageFrame, MsgType, SensorBatch, SensorLayout, make_frame
from sensorimotor.hardware.spec import Channel, Encoder
from sensorimotor.sim.config import DeviceConfig

SPEC = DeviceConfig().spec()  # 1000 Hz IMU, 10 samples per SENSOR frame
IMU_FIELDS = ("gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z")
PERIOD_NS = 1_000_000_000 // SPEC.imu_rate_hz


def _body(msg_type: MsgType, seq: int, stamp_us: int, message) -> bytes:
    return frame_body(make_frame(msg_type, seq, stamp_us, message))


def _batch(n: int, seed: int) -> SensorBatch:
    rng = np.random.default_rng(seed)
    return SensorBatch(rng.normal(size=(n, 6)).astype(np.float32), rng.integers(-5000, 5000, n))


def test_sensor_frame_becomes_one_message_per_sample_at_its_own_time() -> None:
    decoder = FrameDecoder()
    assert decoder.decode(_body(MsgType.DESCRIBE, 0, 0, Describe(SPEC)), 1_000) == []
    batch, t_arrival, stamp = _batch(10, 0), 50_000_000, 40_000
    out = decoder.decode(_body(MsgType.SENSOR, 7, stamp, batch), t_arrival)
    imu = [d for d in out if d.topic == TOPIC_IMU]
    enc = [d for d in out if d.topic == TOPIC_ENCODER]
    assert len(imu) == len(enc) == 10
    # The frame's stamp is its last sample's; the samples are one IMU period apart, oldest first.
    assert [d.log_time_ns for d in imu] == [t_arrival - (9 - k) * PERIOD_NS for k in range(10)]
    assert [d.obj["t_device_us"] for d in imu] == [stamp - (9 - k) * 1000 for k in range(10)]
    for k, d in enumerate(imu):
        assert [d.obj[name] for name in IMU_FIELDS] == batch.imu[k].astype(np.float64).tolist()
        assert d.obj["frame_seq"] == d.sequence == 7
    assert [d.obj["counts"] for d in enc] == batch.encoder[:, 0].tolist()
    assert enc[3].obj["angle_rad"] == 2 * math.pi * int(batch.encoder[3, 0]) / SPEC.encoders[0].cpr
    assert {d.obj["encoder"] for d in enc} == {"arm"}


def test_samples_are_decoded_in_the_layout_the_device_described() -> None:
    """Channels by their own names in SI units (int16 counts times scale), one message per encoder."""
    spec = dataclasses.replace(
        SPEC,
        imu_channels=(Channel("gyro_y", "rad/s", "i16", 0.001), Channel("accel_x", "m/s^2", "i16", 0.01)),
        encoders=(Encoder("left", 1000), Encoder("right", 2000)),
    )
    decoder = FrameDecoder()
    decoder.decode(_body(MsgType.DESCRIBE, 0, 0, Describe(spec)), 0)
    batch = SensorBatch([[0.5, -9.81], [0.25, 9.81]], [[10, -20], [1_000_000, 3]], SensorLayout.of(spec))
    out = decoder.decode(_body(MsgType.SENSOR, 1, 2_000, batch), 10_000_000)
    imu = [d.obj for d in out if d.topic == TOPIC_IMU]
    assert [v for s in imu for v in (s["gyro_y"], s["accel_x"])] == pytest.approx([0.5, -9.81, 0.25, 9.81], abs=1e-6)
    enc = [(d.obj["encoder"], d.obj["counts"], d.obj["angle_rad"]) for d in out if d.topic == TOPIC_ENCODER]
    assert enc == [
        ("left", 10, 2 * math.pi * 10 / 1000), ("right", -20, 2 * math.pi * -20 / 2000),
        ("left", 1_000_000, 2 * math.pi * 1000), ("right", 3, 2 * math.pi * 3 / 2000),
    ]  # fmt: skip


def test_sample_times_never_go_back_when_frames_arrive_in_a_burst() -> None:
    decoder = FrameDecoder()
    decoder.decode(_body(MsgType.DESCRIBE, 0, 0, Describe(SPEC)), 0)
    times = []
    for seq, arrival in enumerate([20_000_000, 20_100_000, 20_200_000]):  # 3 frames within 0.2 ms
        out = decoder.decode(_body(MsgType.SENSOR, seq, 10_000 * (seq + 1), _batch(10, seq)), arrival)
        times += [d.log_time_ns for d in out if d.topic == TOPIC_IMU]
    assert times == sorted(times) and len(set(times)) == 30


def test_without_a_device_description_sensor_frames_are_not_decoded() -> None:
    assert FrameDecoder().decode(_body(MsgType.SENSOR, 1, 10_000, _batch(10, 1)), 5) == []


def test_non_finite_samples_are_null_not_invalid_json(tmp_path: Path) -> None:
    imu = np.zeros((2, 6), np.float32)
    imu[1, 4] = np.nan
    path = tmp_path / "nan.mcap"
    with LogWriter(path) as log:
        log.write_frame(TOPIC_RX, _body(MsgType.DESCRIBE, 0, 0, Describe(SPEC)), log_time_ns=0, seq=0)
        log.write_frame(TOPIC_RX, _body(MsgType.SENSOR, 1, 2000, SensorBatch(imu, [0, 1])), log_time_ns=9, seq=1)
    samples = [m for m in iter_log(path) if m.topic == TOPIC_IMU]
    assert b"NaN" not in samples[1].data and samples[1].json()["accel_y"] is None
    assert samples[0].json()["accel_y"] == 0.0


def test_image_frame_becomes_a_foxglove_raw_image() -> None:
    pixels = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    (out,) = FrameDecoder().decode(_body(MsgType.IMAGE, 3, 99, ImageFrame(pixels)), 2_500_000_001)
    assert out.topic == TOPIC_IMAGE and out.sequence == 3 and out.log_time_ns == 2_500_000_001
    image = out.obj
    assert image["timestamp"] == {"sec": 2, "nsec": 500_000_001}
    assert (image["width"], image["height"], image["step"], image["encoding"]) == (64, 48, 64, "mono8")
    assert base64.b64decode(image["data"]) == pixels.tobytes()


def test_log_holds_raw_frames_unchanged_and_decoded_topics_beside_them(tmp_path: Path) -> None:
    """Every frame is logged raw exactly as given; only valid received SENSOR/IMAGE frames add decoded messages."""
    sensor = _body(MsgType.SENSOR, 1, 10_000, _batch(10, 2))
    corrupt = bytearray(sensor)
    corrupt[12] ^= 0x40  # a payload bit flipped on the line: the CRC no longer matches
    bodies = [
        (
            TOPIC_RX,
            _body(MsgType.DESCRIBE, 0, 0, Describe(dataclasses.replace(SPEC, encoders=(Encoder("arm", 4096),)))),
        ),
        (TOPIC_RX, sensor),
        (TOPIC_RX, bytes(corrupt)),
        (TOPIC_RX, _body(MsgType.IMAGE, 2, 10_000, ImageFrame(np.full((64, 64), 7, np.uint8)))),
        (TOPIC_TX, sensor),  # the host's own frames are not decoded
    ]
    path = tmp_path / "d.mcap"
    with LogWriter(path) as log:
        for t, (topic, body) in enumerate(bodies):
            log.write_frame(topic, body, log_time_ns=20_000_000 + t, seq=t)
    messages = list(iter_log(path))
    assert [(m.topic, m.data) for m in messages if m.topic in (TOPIC_RX, TOPIC_TX)] == bodies
    assert (
        summarize_log(path)
        == log.counts
        == {TOPIC_RX: 4, TOPIC_TX: 1, TOPIC_IMU: 10, TOPIC_ENCODER: 10, TOPIC_IMAGE: 1}
    )
    # Decoded messages follow their frame in the file, and use the logged device's description.
    topics = [m.topic for m in messages]
    assert topics[1] == TOPIC_RX and topics[2:22] == [TOPIC_IMU, TOPIC_ENCODER] * 10
    counts = [m.json()["counts"] for m in messages if m.topic == TOPIC_ENCODER]
    angles = [m.json()["angle_rad"] for m in messages if m.topic == TOPIC_ENCODER]
    assert angles == [2 * math.pi * c / 4096 for c in counts]
