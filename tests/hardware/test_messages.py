"""Tests of sensorimotor.hardware.messages: exact layouts, round trips through the framing, payload validation."""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np
import pytest
from crc_reference import crc32_ref
from hypothesis import given
from hypothesis import strategies as st

from sensorimotor.hardware.framing import (
    MAX_ENCODED,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    Frame,
    StreamDecoder,
    cobs_decode,
    encode_frame,
)
from sensorimotor.hardware.messages import (
    MAX_SAMPLES,
    Command,
    Describe,
    Hello,
    ImageFrame,
    Message,
    MessageError,
    MsgType,
    Reference,
    SensorBatch,
    Start,
    Status,
    StatusFlags,
    Stop,
    make_frame,
    parse_message,
)
from sensorimotor.hardware.spec import IMU_CHANNELS, Actuator, DeviceSpec, SpecError

SPEC = DeviceSpec(
    protocol_version=PROTOCOL_VERSION,
    name="furuta-01",
    imu_rate_hz=1000,
    imu_channels=IMU_CHANNELS,
    imu_window=64,
    samples_per_frame=5,
    stream_rate_hz=200,
    control_rate_hz=200,
    encoder_cpr=2048,
    image_height=48,
    image_width=64,
    camera_rate_hz=30,
    actuators=(Actuator("motor", "V", -12.0, 12.0), Actuator("brake", "V", 0.0, 3.5)),
    watchdog_ms=100,
)
INFO = Describe(SPEC)
RNG = np.random.default_rng(0)
MESSAGES: list[Message] = [
    Hello(1),
    INFO,
    Start(),
    Stop(),
    SensorBatch(RNG.normal(size=(5, 6)), RNG.integers(-(2**31), 2**31, size=5)),
    SensorBatch(np.zeros((MAX_SAMPLES, 6)), np.zeros(MAX_SAMPLES)),
    ImageFrame(RNG.integers(0, 256, size=(64, 64))),
    ImageFrame(np.zeros((1, 1))),
    Command((1.5,)),
    Command((-3.25, 0.0, 12.0)),
    Command(()),
    Status(StatusFlags.STREAMING | StatusFlags.WATCHDOG_TRIPPED, 10, 2, 7),
    Reference((("alpha", 3.0), ("alpha_d", -0.5), ("theta", 0.25), ("theta_d", 1.0))),
    Reference((("f_class", 2.0),)),
]


def through_the_wire(message: Message, seq: int = 3) -> Message:
    wire = encode_frame(make_frame(message.MSG_TYPE, seq, 123_456, message))
    assert len(wire) <= MAX_ENCODED
    (frame,) = StreamDecoder().feed(wire)
    assert (frame.msg_type, frame.seq, frame.timestamp_us) == (message.MSG_TYPE, seq, 123_456)
    return parse_message(frame)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    assert type(message).unpack(message.pack()) == message
    assert through_the_wire(message) == message


def test_worked_example_command_frame() -> None:
    # The example in docs/protocol.md: COMMAND 1.5 V, seq 7, timestamp 1000 us.
    body = bytes.fromhex("03 20 07 00 e8 03 00 00 01 00 00 c0 3f e4 13 29 cc")
    assert body[13:] == crc32_ref(body[:13]).to_bytes(4, "little")  # CRC 0xCC2913E4, from the reference
    wire = encode_frame(make_frame(MsgType.COMMAND, 7, 1000, Command((1.5,))))
    assert wire == bytes.fromhex("04 03 20 07 03 e8 03 01 02 01 01 07 c0 3f e4 13 29 cc 00")
    assert cobs_decode(wire[:-1]) == body


def test_sensor_layout_matches_struct() -> None:
    imu = np.arange(12, dtype=np.float32).reshape(2, 6) / 4
    batch = SensorBatch(imu, np.array([-1, 70_000]))
    expected = b"\x02" + struct.pack("<6fi", *imu[0], -1) + struct.pack("<6fi", *imu[1], 70_000)
    assert batch.pack() == expected
    assert batch.imu.dtype == np.float32 and batch.encoder.dtype == np.int32
    assert SensorBatch.unpack(expected).imu.flags.c_contiguous


def test_max_sensor_batch_fits_a_frame() -> None:
    assert len(SensorBatch(np.zeros((MAX_SAMPLES, 6)), np.zeros(MAX_SAMPLES)).pack()) <= MAX_PAYLOAD


def test_describe_layout_carries_the_whole_device_spec() -> None:
    payload = INFO.pack()
    assert len(payload) == 39 + 16 * 6 + 24 * 2
    assert payload[:2] == PROTOCOL_VERSION.to_bytes(2, "little")
    assert payload[2:18] == b"furuta-01" + bytes(7)
    assert payload[39:55] == b"gyro_x\0\0rad/s\0\0\0"
    assert Describe.unpack(payload).spec == SPEC
    assert Describe.peek_version(payload) == PROTOCOL_VERSION


def test_status_flags_and_layout() -> None:
    status = Status.unpack(Status(StatusFlags.WATCHDOG_TRIPPED, 1, 2, 3).pack())
    assert StatusFlags.WATCHDOG_TRIPPED in status.flags and StatusFlags.STREAMING not in status.flags
    assert Status(StatusFlags.STREAMING, 1, 2, 3).pack() == b"\x02" + struct.pack("<III", 1, 2, 3)


@given(
    st.integers(1, MAX_SAMPLES).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(width=32), min_size=6 * n, max_size=6 * n),
            st.lists(st.integers(-(2**31), 2**31 - 1), min_size=n, max_size=n),
        )
    )
)
def test_sensor_batch_round_trip(data: tuple[list[float], list[int]]) -> None:
    imu, encoder = data
    batch = SensorBatch(np.array(imu, np.float32).reshape(-1, 6), np.array(encoder))
    assert SensorBatch.unpack(batch.pack()) == batch


@given(st.lists(st.floats(-1e6, 1e6), max_size=255))
def test_command_round_trip(volts: list[float]) -> None:
    command = Command(tuple(volts))
    assert Command.unpack(command.pack()) == command
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30) for a, b in zip(command.volts, volts, strict=False))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_command_rejects_non_finite(bad: float) -> None:
    with pytest.raises(MessageError, match="finite"):
        Command.unpack(struct.pack("<Bff", 2, 1.0, bad))
    with pytest.raises(MessageError):
        Command((bad,))


@pytest.mark.parametrize(
    ("cls", "payload"),
    [
        (Hello, b"\x01"),
        (Describe, bytes(38)),
        (Describe, INFO.pack()[:-1]),
        (Start, b"\x00"),
        (Stop, b"\x00"),
        (SensorBatch, b""),
        (SensorBatch, b"\x02" + bytes(28)),
        (SensorBatch, b"\x00"),
        (ImageFrame, b"\x02"),
        (ImageFrame, b"\x02\x02" + bytes(3)),
        (ImageFrame, b"\x00\x05"),
        (Command, b""),
        (Command, b"\x01\x00\x00"),
        (Status, bytes(12)),
        (Reference, b""),
        (Reference, b"\x00"),  # no values
        (Reference, b"\x01" + bytes(11)),  # one value needs 12 bytes
        (Reference, b"\x01" + b"\xff" * 8 + bytes(4)),  # name not UTF-8
        (Reference, b"\x01" + bytes(12)),  # empty name
    ],
)
def test_bad_payload_raises_message_error_naming_the_message(cls: type[Message], payload: bytes) -> None:
    with pytest.raises(MessageError, match=cls.__name__):
        cls.unpack(payload)


def test_describe_validation_names_the_field() -> None:
    values = INFO.pack()
    with pytest.raises(MessageError, match="name"):
        Describe.unpack(values[:2] + b"\xff" * 16 + values[18:])
    with pytest.raises(MessageError, match="samples_per_frame"):  # 7 x 200 Hz is not 1000 Hz
        Describe.unpack(values[:22] + bytes([7]) + values[23:])
    with pytest.raises(SpecError, match="name"):
        dataclasses.replace(SPEC, name="x" * 17)
    with pytest.raises(SpecError, match=r"actuators\[0\]: range"):
        dataclasses.replace(SPEC, actuators=(Actuator("motor", "V", 5.0, -5.0),))
    with pytest.raises(SpecError, match="encoder_cpr"):
        dataclasses.replace(SPEC, encoder_cpr=-1)


def test_message_shape_validation() -> None:
    with pytest.raises(MessageError, match="SensorBatch"):
        SensorBatch(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(MessageError, match="SensorBatch"):
        SensorBatch(np.zeros((MAX_SAMPLES + 1, 6)), np.zeros(MAX_SAMPLES + 1))
    with pytest.raises(MessageError, match="ImageFrame"):
        ImageFrame(np.zeros((72, 64)))  # 4608 pixels + 2 header bytes > MAX_PAYLOAD


def test_messages_do_not_alias_caller_arrays() -> None:
    pixels = np.zeros((2, 2), np.uint8)
    image = ImageFrame(pixels)
    pixels[0, 0] = 9
    assert image.pixels[0, 0] == 0


def test_make_frame_checks_type_and_parse_rejects_unknown() -> None:
    with pytest.raises(MessageError, match="COMMAND"):
        make_frame(MsgType.SENSOR, 0, 0, Command((0.0,)))
    with pytest.raises(MessageError, match="unknown msg_type 0x7F"):
        parse_message(Frame(0x7F, 0, 0, b""))
    with pytest.raises(MessageError, match="Hello"):
        parse_message(Frame(MsgType.HELLO, 0, 0, b""))
