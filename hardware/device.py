"""Host side of the serial protocol: handshake, streaming, commands, counters, logging.

A small LeRobot-style interface: ``connect`` (handshake), ``start``, ``poll`` (frames in),
``send_command`` (returns what was actually sent), ``stop``, ``close``. Every frame in and
out is handed to the recorder when one is attached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sensorimotor.hardware.errors import DeviceNotRespondingError, InvalidDescriptionError, ProtocolVersionError
from sensorimotor.hardware.framing import (
    PROTOCOL_VERSION,
    Frame,
    SeqTracker,
    StreamDecoder,
    encode_body,
    encode_frame,
)
from sensorimotor.hardware.log.mcaplog import TOPIC_RX, TOPIC_TX, LogWriter
from sensorimotor.hardware.messages import (
    Command,
    Describe,
    Hello,
    Message,
    MessageError,
    MessageReader,
    MsgType,
    Start,
    Stop,
    make_frame,
)
from sensorimotor.hardware.spec import DeviceSpec
from sensorimotor.hardware.transport import Transport

HELLO_INTERVAL_S = 0.2
#: HELLO in the framing of protocol version 2 (CRC-16), sent from the second HELLO on: a device
#: of version 2 cannot read ours, but answers this one with a DESCRIBE that names its version.
HELLO_V2 = encode_frame(make_frame(MsgType.HELLO, 0, 0, Hello(PROTOCOL_VERSION), version=2))
#: Intact frames of another protocol version in a row (none of ours between) that name the device's version.
FOREIGN_FRAMES = 3


def frame_body(frame: Frame) -> bytes:
    """The un-stuffed frame body (header + payload + CRC), as logged."""
    return encode_body(frame)


@dataclass
class Received:
    """A decoded message with its frame and host arrival time (ns, monotonic since connect)."""

    frame: Frame
    message: Message
    t_ns: int


@dataclass
class LinkStats:
    frames_in: int = 0
    frames_out: int = 0
    unknown_messages: int = 0
    seq: SeqTracker = field(default_factory=SeqTracker)  # one counter per direction (docs/protocol.md)

    @property
    def frames_lost(self) -> int:
        return self.seq.lost


class DeviceClient:
    """Talks to one device over a transport."""

    def __init__(self, transport: Transport, recorder: LogWriter | None = None) -> None:
        self.transport = transport
        self.recorder = recorder
        self.decoder = StreamDecoder()
        self.stats = LinkStats()
        self.spec: DeviceSpec | None = None  # the device's description, from its DESCRIBE
        self.invalid_description: str | None = None  # why the last DESCRIBE that could not be parsed was refused
        self.read = MessageReader()  # SENSOR frames in the layout of the device's last DESCRIBE
        self._seq = 0
        self._t0 = time.monotonic_ns()

    def reattach(self, transport: Transport) -> None:
        """Continue on a reopened port: a fresh decoder (no half frame from before), same counters and clock."""
        self.transport = transport
        self.decoder = StreamDecoder()

    def now_ns(self) -> int:
        return time.monotonic_ns() - self._t0

    # ------------------------------------------------------------------ out

    def _send(self, msg_type: MsgType, message: Message) -> Frame:
        frame = make_frame(msg_type, self._seq, self.now_ns() // 1000, message)
        self._seq = (self._seq + 1) & 0xFFFF
        self.transport.write(encode_frame(frame))
        self.stats.frames_out += 1
        if self.recorder is not None:
            self.recorder.write_frame(TOPIC_TX, frame_body(frame), log_time_ns=self.now_ns(), seq=frame.seq)
        return frame

    def send_command(self, volts: Sequence[float]) -> Frame:
        """One COMMAND: a voltage per actuator (already clamped by the caller)."""
        return self._send(MsgType.COMMAND, Command(tuple(float(v) for v in volts)))

    def zero_command(self) -> Frame:
        """0 V on every actuator the device described (one if it has not described itself)."""
        return self.send_command([0.0] * (self.spec.n_actuators if self.spec else 1))

    def start(self) -> None:
        self._send(MsgType.START, Start())

    def stop(self) -> None:
        """Zero the motor and stop streaming (best effort: the link may already be gone)."""
        try:
            self.zero_command()
            self._send(MsgType.STOP, Stop())
        except Exception:
            pass

    # ------------------------------------------------------------------ in

    def poll(self) -> list[Received]:
        """Decode whatever bytes have arrived; garbage is skipped and counted by the decoder."""
        data = self.transport.read_available()
        if not data:
            return []
        t = self.now_ns()
        out = []
        frames = self.decoder.feed(data)
        if self.decoder.foreign_streak >= FOREIGN_FRAMES and self.decoder.foreign_version is not None:
            raise _version_error(self.transport.name, self.decoder.foreign_version)  # none of ours: not noise
        for frame in frames:
            if self.recorder is not None:
                self.recorder.write_frame(TOPIC_RX, frame_body(frame), log_time_ns=t, seq=frame.seq)
            self.stats.frames_in += 1
            self.stats.seq.update(frame.seq)
            version = Describe.peek_version(frame.payload) if frame.msg_type == MsgType.DESCRIBE else None
            if version not in (None, PROTOCOL_VERSION):
                raise _version_error(self.transport.name, version or 0)
            try:
                out.append(Received(frame, self.read(frame), t))
            except MessageError as exc:
                if frame.msg_type == MsgType.DESCRIBE:  # the device answered: its description is what is wrong
                    self.invalid_description = str(exc).removeprefix("Describe: ")
                self.stats.unknown_messages += 1
        return out

    def connect(self, timeout_s: float, on_other: Callable[[Received], None] | None = None) -> DeviceSpec:
        """Handshake: send HELLO every 200 ms until DESCRIBE arrives; raise after ``timeout_s``.

        A device of another protocol version is named as such (ProtocolVersionError),
        whether its DESCRIBE says so or only its frames' version byte does. A DESCRIBE that
        arrives intact but describes an impossible device (a stream rate that does not divide
        the IMU rate, ...) is refused at once, naming the field (InvalidDescriptionError).
        """
        self.transport.write(b"\x00")  # flush byte: ends any partial frame in the device's buffer
        self.invalid_description = None
        deadline = time.monotonic() + timeout_s
        next_hello = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                if self.decoder.foreign_version is not None:
                    raise _version_error(self.transport.name, self.decoder.foreign_version)
                garbage = self.decoder.stats.bytes_discarded + self.decoder.buffered
                if garbage and not self.decoder.stats.frames_ok:
                    raise DeviceNotRespondingError(
                        f"{self.transport.name} sent {garbage} bytes in {timeout_s:.1f} s but not one valid frame: "
                        "a wrong baud rate (set loop.baudrate to the device's), or not a sensorimotor device"
                    )
                raise DeviceNotRespondingError(
                    f"no answer from {self.transport.name} within {timeout_s:.1f} s "
                    f"({self.decoder.stats.frames_ok} valid frames, {garbage} garbage bytes). "
                    "Is the device powered and running sensorimotor firmware, and is this the right port?"
                )
            if now >= next_hello:
                self._send(MsgType.HELLO, Hello(PROTOCOL_VERSION))
                if next_hello:  # no answer to the first: ask a device of version 2 too
                    self.transport.write(HELLO_V2)
                next_hello = now + HELLO_INTERVAL_S
            self.transport.wait_readable(min(deadline, next_hello) - now)
            received = self.poll()
            if self.invalid_description is not None:
                raise _description_error(self.transport.name, self.invalid_description)
            for rx in received:
                if isinstance(rx.message, Describe):
                    self.spec = rx.message.spec
                    return rx.message.spec
                if on_other is not None:
                    on_other(rx)


def _description_error(port: str, detail: str) -> InvalidDescriptionError:
    return InvalidDescriptionError(
        f"the device on {port} answered with an invalid description: {detail}. Fix the DESCRIBE its firmware "
        "sends (docs/protocol.md, section 3)."
    )


def _version_error(port: str, version: int) -> ProtocolVersionError:
    return ProtocolVersionError(
        f"protocol_version: the device on {port} speaks protocol version {version}, this host speaks "
        f"{PROTOCOL_VERSION}. Flash firmware for protocol {PROTOCOL_VERSION}, or install the sensorimotor "
        "release that speaks the device's version."
    )
