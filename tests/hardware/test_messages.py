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
    MessageReader,
    MsgType,
    Reference,
    SensorBatch,
    SensorLayout,
    Start,
    Status,
    StatusFlags,
    Stop,
    make_frame,
    parse_message,
)
from sensorimotor.hardware.spec import IMU_CHANNELS, Actuator, Camera, Channel, DeviceSpec, Encoder, SpecError

SPEC = DeviceSpec(
    protocol_version=PROTOCOL_VERSION,
    name="furuta-01",
    imu_rate_hz=1000,
    imu_channels=IMU_CHANNELS,
    imu_window=64,
    samples_per_frame=5,
    stream_rate_hz=200,
    control_rate_hz=200,
    encoders=(Encoder("arm", 2048, 2.5),),
    camera=Camera(48, 64, 30),
    actuators=(Actuator("motor", "V", -12.0, 12.0), Actuator("brake", "V", 0.0, 3.5)),
    watchdog_ms=100,
)
INFO = Describe(SPEC)
LAYOUT = SensorLayout.of(SPEC)  # six float32 channels and one encoder: what a batch without a layout packs as
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
    return parse_message(frame, LAYOUT)


def unpack(message: Message) -> Message:
    if isinstance(message, SensorBatch):
        return SensorBatch.unpack(message.pack(), LAYOUT)
    return type(message).unpack(message.pack())


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    assert unpack(message) == message
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
    assert SensorBatch.unpack(expected, LAYOUT).imu.flags.c_contiguous


def test_sensor_record_is_derived_from_the_description() -> None:
    """int16 channels travel as counts (value / scale, rounded, clipped), then every encoder as an i32."""
    spec = dataclasses.replace(
        SPEC,
        imu_channels=(Channel("gyro_x", "rad/s", "i16", 0.001), Channel("accel_z", "m/s^2", "f32")),
        encoders=(Encoder("left", 1000), Encoder("right", 1000)),
    )
    layout = SensorLayout.of(spec)
    batch = SensorBatch([[0.0123, 9.5], [-40.0, -1.0]], [[5, -6], [7, 2**31 - 1]], layout)
    expected = b"\x02" + struct.pack("<hfii", 12, 9.5, 5, -6) + struct.pack("<hfii", -32768, -1.0, 7, 2**31 - 1)
    assert spec.sample_bytes == 14 and batch.pack() == expected
    back = SensorBatch.unpack(expected, layout)
    assert back.imu.dtype == np.float32 and back.encoder.shape == (2, 2)
    np.testing.assert_array_equal(back.imu, np.array([[0.012, 9.5], [-32.768, -1.0]], np.float32))
    assert back.encoder.tolist() == [[5, -6], [7, 2**31 - 1]]
    assert through_the_wire_as(spec, back) == back


def through_the_wire_as(spec: DeviceSpec, batch: SensorBatch) -> Message:
    """A batch sent by ``spec``'s device and read by a host that got its DESCRIBE first."""
    read = MessageReader()
    wire = encode_frame(make_frame(MsgType.DESCRIBE, 0, 0, Describe(spec))) + encode_frame(
        make_frame(MsgType.SENSOR, 1, 10, batch)
    )
    described, sensor = StreamDecoder().feed(wire)
    assert read(described) == Describe(spec)
    return read(sensor)


def test_sensor_frame_cannot_be_read_before_its_description() -> None:
    frame = make_frame(MsgType.SENSOR, 1, 10, MESSAGES[4])
    with pytest.raises(MessageError, match="before DESCRIBE"):
        parse_message(frame)
    with pytest.raises(MessageError, match="before DESCRIBE"):
        MessageReader()(frame)
    assert MessageReader(SPEC)(frame) == MESSAGES[4]
    two = SensorLayout.of(dataclasses.replace(SPEC, encoders=(Encoder("a", 8), Encoder("b", 8))))
    with pytest.raises(MessageError, match="SensorBatch payload must be"):  # 32-byte records, not 28
        parse_message(frame, two)


def test_max_sensor_batch_fits_a_frame() -> None:
    assert len(SensorBatch(np.zeros((MAX_SAMPLES, 6)), np.zeros(MAX_SAMPLES)).pack()) <= MAX_PAYLOAD


def test_describe_layout_carries_the_whole_device_spec() -> None:
    payload = INFO.pack()
    assert len(payload) == 36 + 21 * 6 + 16 * 1 + 24 * 2
    assert payload[:2] == PROTOCOL_VERSION.to_bytes(2, "little")
    assert payload[2:18] == b"furuta-01" + bytes(7)
    assert payload[27:31] == bytes([48, 64]) + (30).to_bytes(2, "little")  # the camera
    assert payload[33:36] == bytes([6, 1, 2])  # channels, encoders, actuators
    assert payload[36:57] == b"gyro_x\0\0rad/s\0\0\0" + b"\x00" + struct.pack("<f", 1.0)
    assert payload[162:178] == b"arm\0\0\0\0\0" + struct.pack("<If", 2048, 2.5)
    assert Describe.unpack(payload).spec == SPEC
    assert Describe.peek_version(payload) == PROTOCOL_VERSION


def test_describe_of_a_device_without_camera_with_int16_channels_and_a_wheel() -> None:
    spec = dataclasses.replace(
        SPEC,
        imu_channels=(Channel("gyro_y", "rad/s", "i16", 1 / 32768), Channel("accel_x", "m/s^2", "i16", 0.0012)),
        encoders=(Encoder("wheel_l", 1440), Encoder("wheel_r", 1440)),
        camera=None,
    )
    payload = Describe(spec).pack()
    assert payload[27:31] == bytes(4)  # no camera: zero height, width and rate
    back = Describe.unpack(payload).spec
    assert back == spec and back.camera is None and not back.encoders[0].bounded
    assert back.imu_channels[1].scale == struct.unpack("<f", struct.pack("<f", 0.0012))[0]  # as the wire carries it
    with pytest.raises(MessageError, match="encoding 7 is unknown"):
        Describe.unpack(payload[: 36 + 16] + bytes([7]) + payload[36 + 17 :])


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
    assert SensorBatch.unpack(batch.pack(), LAYOUT) == batch


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
        (Describe, bytes(35)),
        (Describe, INFO.pack()[:-1]),
        (Start, b"\x00"),
        (Stop, b"\x00"),
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


@pytest.mark.parametrize("payload", [b"", b"\x02" + bytes(28), b"\x00"])
def test_bad_sensor_payload_raises_message_error(payload: bytes) -> None:
    with pytest.raises(MessageError, match="SensorBatch"):
        SensorBatch.unpack(payload, LAYOUT)


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
    with pytest.raises(SpecError, match=r"encoders\[0\]: cpr"):
        dataclasses.replace(SPEC, encoders=(Encoder("arm", -1),))
    with pytest.raises(SpecError, match="encoders: 1..8"):
        dataclasses.replace(SPEC, encoders=())
    with pytest.raises(SpecError, match=r"imu_channels\[0\]: encoding"):
        dataclasses.replace(SPEC, imu_channels=(Channel("g", "rad/s", "i8"),))
    with pytest.raises(SpecError, match=r"imu_channels\[0\]: scale"):
        dataclasses.replace(SPEC, imu_channels=(Channel("g", "rad/s", "f32", 2.0),))
    with pytest.raises(SpecError, match="camera.height"):
        dataclasses.replace(SPEC, camera=Camera(0, 64, 30))


def test_message_shape_validation() -> None:
    with pytest.raises(MessageError, match="SensorBatch"):
        SensorBatch(np.zeros((3, 5)), np.zeros(4))
    with pytest.raises(MessageError, match="the device sends 6 channels and 1 encoders, the batch has 5 and 1"):
        SensorBatch(np.zeros((3, 5)), np.zeros(3), LAYOUT).pack()
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
