"""Binary serial framing: COBS byte stuffing, CRC-32, frame header, stream decoding.

A frame on the wire is ``COBS(header + payload + crc32) + b"\\x00"``; the zero byte is
the delimiter, and COBS guarantees it appears nowhere else. :class:`StreamDecoder` turns
an arbitrary chunked byte stream back into :class:`Frame` objects, dropping and counting
anything malformed without ever raising. Sequence-number bookkeeping (loss/duplicate
detection) lives here too. The payload contents are :mod:`sensorimotor.hardware.messages`' business.

Protocol versions 1 and 2 ended a frame with a CRC-16; version 3 with a CRC-32. The CRC
follows the frame's version (:func:`crc_size`), so a frame of version 2 is still encoded and
recognised (:func:`detect_version`): a receiver names a device of the old version instead of
counting its frames as noise.

The wire format is specified in ``docs/protocol.md``. Only the standard library is used.
"""

from __future__ import annotations

import binascii
import re
import struct
from dataclasses import dataclass

PROTOCOL_VERSION = 3

#: HELLO and DESCRIBE are accepted whatever the frame's version: their payloads start with
#: the sender's protocol version, so two sides of different versions can say what they speak.
VERSION_FREE_TYPES = frozenset({0x01, 0x02})

#: version u8, msg_type u8, seq u16, timestamp_us u32 (little-endian).
HEADER = struct.Struct("<BBHI")
#: The CRC that ends a frame of this version: CRC-32, little-endian.
CRC = struct.Struct("<I")
#: The CRC that ended a frame of versions 1 and 2: CRC-16, little-endian.
CRC16 = struct.Struct("<H")
#: Versions whose frames end with a CRC-16 (:data:`CRC16`); every later one uses :data:`CRC`.
CRC16_VERSIONS = frozenset({1, 2})
MAX_PAYLOAD = 4608
MAX_BODY = HEADER.size + MAX_PAYLOAD + CRC.size


def cobs_max_encoded(n: int) -> int:
    """Upper bound on the COBS encoding of ``n`` bytes: 1 code byte + 1 per 254 bytes."""
    return n + 1 + n // 254


#: Largest possible encoded frame, delimiter included.
MAX_ENCODED = cobs_max_encoded(MAX_BODY) + 1

SEQ_MOD = 1 << 16
#: :func:`seq_gap` result when the same sequence number arrives twice in a row.
SEQ_DUPLICATE = -1
#: :func:`seq_gap` result when the new sequence number is *behind* the previous one.
SEQ_BACKWARDS = -2


class FramingError(ValueError):
    """A frame could not be decoded."""


class CobsError(FramingError):
    """The COBS encoding is malformed (zero byte inside, or a code points past the end)."""


class CrcError(FramingError):
    """The CRC over header and payload does not match."""


class VersionError(FramingError):
    """The frame was built for another protocol version (``.version``)."""

    def __init__(self, message: str, version: int = -1) -> None:
        super().__init__(message)
        self.version = version


class FrameSizeError(FramingError):
    """The frame is shorter than header + CRC, or its payload exceeds MAX_PAYLOAD."""


# ----------------------------------------------------------------------------- COBS


_CODE = [bytes((n + 1,)) for n in range(254)]  # code byte of a block of n < 254 bytes
_ONES_RUN = re.compile(rb"\x01+")


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result contains no zero byte.

    Each zero-free run becomes a code byte (run length + 1) and the run; the zero that
    ended the run is implied by the code. Overhead is 1 byte plus 1 per 254 bytes.
    ``bytes.split`` and a comprehension keep the per-byte work in C (a 4 KiB frame of
    zeros, the worst case, encodes in about 0.2 ms).
    """
    *runs, tail = bytes(data).split(b"\x00")  # the zeros between runs are implied
    parts = [_CODE[len(r)] + r if len(r) < 254 else _encode_run(r, last=False) for r in runs]
    parts.append(_encode_run(tail, last=True))
    return b"".join(parts)


def _encode_run(run: bytes, last: bool) -> bytes:
    """Encode one zero-free run, splitting it into full 254-byte (code 0xFF) blocks."""
    out: list[bytes] = []
    while len(run) >= 254:
        out += (b"\xff", run[:254])
        run = run[254:]
    # A 0xFF block implies no zero after it, so a run ending in a full block still needs
    # an empty block (code 1) to carry its zero -- unless it is the last run (canonical COBS).
    if run or not out or not last:
        out += (_CODE[len(run)], run)
    return b"".join(out)


def cobs_decode(data: bytes) -> bytes:
    """Invert :func:`cobs_encode` (input without the 0x00 delimiter).

    Raises :class:`CobsError` (a :class:`FramingError`) on empty input, a zero byte
    inside, or a code byte that points past the end.
    """
    data = bytes(data)
    if not data:
        raise CobsError("empty COBS block")
    if (zero := data.find(0)) != -1:
        raise CobsError(f"zero byte inside COBS data at offset {zero}")
    out: list[bytes] = []
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 1:
            # A run of empty blocks is a run of zeros (long in blank images): take it whole.
            ones = _ONES_RUN.match(data, i)
            assert ones is not None  # data[i] == 1
            run_end = ones.end()
            out.append(bytes(run_end - i if run_end < n else run_end - i - 1))
            i = run_end
            continue
        end = i + code
        if end > n:
            raise CobsError(f"COBS code {code} at offset {i} runs past the end ({n} bytes)")
        out.append(data[i + 1 : end])
        # Every block but a full (0xFF) one stands for "these bytes, then a zero";
        # the zero after the final block is the delimiter, not data.
        if code != 0xFF and end < n:
            out.append(b"\x00")
        i = end
    return b"".join(out)


# ----------------------------------------------------------------------------- frames


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3: poly 0x04C11DB7 reflected, init and final XOR 0xFFFFFFFF); b"123456789" -> 0xCBF43926."""
    return binascii.crc32(data)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection); b"123456789" -> 0x29B1. Versions 1 and 2."""
    return binascii.crc_hqx(data, 0xFFFF)


def crc_size(version: int) -> int:
    """Bytes of CRC that end a frame of protocol ``version``: 2 (CRC-16) for versions 1 and 2, else 4 (CRC-32)."""
    return CRC16.size if version in CRC16_VERSIONS else CRC.size


def _crc_bytes(unsigned: bytes, version: int) -> bytes:
    """The CRC of header + payload as a frame of ``version`` carries it (little-endian)."""
    return CRC16.pack(crc16(unsigned)) if version in CRC16_VERSIONS else CRC.pack(crc32(unsigned))


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``seq`` and ``timestamp_us`` are masked to u16/u32 on encode."""

    msg_type: int
    seq: int
    timestamp_us: int
    payload: bytes
    version: int = PROTOCOL_VERSION


def encode_body(frame: Frame) -> bytes:
    """Frame -> body (before COBS): header, payload, and the CRC of the frame's version (:func:`crc_size`)."""
    if len(frame.payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(frame.payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    if not (0 <= frame.msg_type <= 0xFF and 0 <= frame.version <= 0xFF):
        raise ValueError(f"msg_type {frame.msg_type} and version {frame.version} must fit in a byte")
    seq, stamp = frame.seq & 0xFFFF, frame.timestamp_us & 0xFFFFFFFF
    unsigned = HEADER.pack(frame.version, frame.msg_type, seq, stamp) + bytes(frame.payload)
    return unsigned + _crc_bytes(unsigned, frame.version)


def encode_frame(frame: Frame) -> bytes:
    """Frame -> wire bytes: ``COBS(header + payload + crc32_le) + b"\\x00"`` (a CRC-16 for versions 1 and 2)."""
    return cobs_encode(encode_body(frame)) + b"\x00"


def _intact(body: bytes, version: int) -> Frame:
    """``body`` read with the CRC of ``version``'s framing; FrameSizeError or CrcError if it does not fit."""
    crc = crc_size(version)
    if len(body) < HEADER.size + crc:
        raise FrameSizeError(f"frame of {len(body)} bytes is shorter than header + CRC")
    if len(body) > HEADER.size + MAX_PAYLOAD + crc:
        payload = len(body) - HEADER.size - crc
        raise FrameSizeError(f"payload of {payload} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    sent, computed = body[-crc:], _crc_bytes(body[:-crc], version)
    if sent != computed:
        width = 8 * crc
        raise CrcError(
            f"CRC-{width} mismatch: frame says 0x{int.from_bytes(sent, 'little'):0{crc * 2}X}, "
            f"computed 0x{int.from_bytes(computed, 'little'):0{crc * 2}X}"
        )
    got, msg_type, seq, timestamp_us = HEADER.unpack_from(body)
    return Frame(msg_type, seq, timestamp_us, body[HEADER.size : -crc], got)


def detect_version(body: bytes) -> int | None:
    """The protocol version of an intact frame body, in whichever version's framing; None if it is intact in none.

    The body's version byte names a version, and so its CRC (:func:`crc_size`): the frame
    is intact when that CRC matches. A version-2 frame (CRC-16) reaching a version-3 receiver
    is thereby told apart from line noise, which matches no CRC. A corrupted version byte
    names a CRC that does not match: no version, a CRC error as before.
    """
    body = bytes(body)
    if not body:
        return None
    try:
        return _intact(body, body[0]).version
    except FramingError:
        return None


def decode_body(body: bytes, version: int = PROTOCOL_VERSION) -> Frame:
    """COBS-decoded body -> Frame, checking size, then CRC, then ``version`` (except HELLO, DESCRIBE).

    Size and CRC are those of ``version``'s framing. A body that fails them but is intact in
    the framing of the version its first byte names (:func:`detect_version`, e.g. a CRC-16
    frame of version 2) is a frame of that version: a :class:`VersionError`, or, for HELLO
    and DESCRIBE, a Frame whose ``version`` says so.
    Raises :class:`FrameSizeError`, :class:`CrcError` or :class:`VersionError`.
    """
    body = bytes(body)
    try:
        frame = _intact(body, version)
    except (FrameSizeError, CrcError):
        # Not intact in our framing: intact in another version's (its version byte says which), or damaged.
        if not body or crc_size(body[0]) == crc_size(version) or detect_version(body) is None:
            raise
        frame = _intact(body, body[0])
    # CRC before version: a corrupted version byte is a CRC error, not a version mismatch.
    if frame.version != version and frame.msg_type not in VERSION_FREE_TYPES:
        raise VersionError(f"protocol version {frame.version}, expected {version}", frame.version)
    return frame


# ----------------------------------------------------------------------------- stream


@dataclass(slots=True)
class DecoderStats:
    """Counters of a :class:`StreamDecoder`. ``bytes_discarded`` excludes delimiters."""

    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    version_errors: int = 0
    size_errors: int = 0
    bytes_discarded: int = 0

    @property
    def frames_bad(self) -> int:
        """All dropped frames, whatever the reason."""
        return self.crc_errors + self.cobs_errors + self.version_errors + self.size_errors


class StreamDecoder:
    """Incremental decoder: feed arbitrary chunks, get complete valid frames back.

    Never raises on bad input: a bad frame is dropped up to the next 0x00 (resync) and
    counted in :attr:`stats`, and :attr:`last_error` says what happened. Memory is
    bounded: a run longer than any valid frame without a delimiter is discarded (one
    ``size_errors``) together with the rest of it up to the next 0x00.

    Intact frames of another protocol version (:func:`detect_version`, whatever their CRC)
    count as ``version_errors``; :attr:`foreign_version` keeps the last such version and
    :attr:`foreign_streak` how many came since the last frame of :attr:`version`, so that a
    caller can tell a device of another version from a noisy line.
    """

    def __init__(self, version: int = PROTOCOL_VERSION) -> None:
        self.version = version  # frames of another version are dropped (but HELLO, DESCRIBE)
        self.foreign_version: int | None = None  # the last other version seen, for error messages
        self.foreign_streak = 0  # intact frames of another version since the last one of ours
        self.stats = DecoderStats()
        self.last_error: str | None = None
        self._buf = bytearray()
        self._skipping = False  # inside an over-long run: discard up to the next 0x00

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for a delimiter (at most MAX_ENCODED - 1)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Append ``data``; return the frames it completed, in order."""
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        start = 0
        while (end := buf.find(0, start)) != -1:
            if self._skipping:
                self.stats.bytes_discarded += end - start
                self._skipping = False
            elif end > start:  # empty frames (0x00 0x00) are flush bytes, not errors
                self._decode_one(bytes(buf[start:end]), frames)
            start = end + 1
        del buf[:start]
        self._bound_buffer()
        return frames

    def _decode_one(self, block: bytes, frames: list[Frame]) -> None:
        if len(block) > MAX_ENCODED - 1:
            self._drop(block, "size_errors", f"frame of {len(block)} encoded bytes is too long")
            return
        try:
            frame = decode_body(cobs_decode(block), self.version)
        except CrcError as exc:
            self._drop(block, "crc_errors", str(exc))
        except VersionError as exc:
            self.foreign_version = exc.version
            self.foreign_streak += 1
            self._drop(block, "version_errors", str(exc))
        except FrameSizeError as exc:
            self._drop(block, "size_errors", str(exc))
        except FramingError as exc:
            self._drop(block, "cobs_errors", str(exc))
        else:
            self.stats.frames_ok += 1
            self.foreign_streak = 0 if frame.version == self.version else self.foreign_streak + 1
            frames.append(frame)

    def _drop(self, block: bytes, counter: str, message: str) -> None:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.stats.bytes_discarded += len(block)
        self.last_error = message

    def _bound_buffer(self) -> None:
        """Called with no delimiter left in the buffer."""
        if self._skipping:
            self.stats.bytes_discarded += len(self._buf)
            self._buf.clear()
        elif len(self._buf) > MAX_ENCODED - 1:  # no valid frame is this long
            message = f"{len(self._buf)} bytes without a delimiter; skipping to the next 0x00"
            self._drop(bytes(self._buf), "size_errors", message)
            self._buf.clear()
            self._skipping = True


# ----------------------------------------------------------------------------- sequence numbers


def seq_gap(prev: int, new: int) -> int:
    """Frames lost between u16 sequence numbers ``prev`` and ``new`` (wraparound-aware).

    Returns 0 when ``new`` follows ``prev`` (65535 -> 0 included), k > 0 when k frames
    are missing, :data:`SEQ_DUPLICATE` (-1) when ``new == prev``, and
    :data:`SEQ_BACKWARDS` (-2) when ``new`` is up to half the range (32768) behind
    ``prev``, i.e. older than it. So a loss of 32767 or more frames reads as backwards.
    """
    delta = (new - prev) % SEQ_MOD
    if delta == 0:
        return SEQ_DUPLICATE
    if delta >= SEQ_MOD // 2:
        return SEQ_BACKWARDS
    return delta - 1


@dataclass(slots=True)
class SeqTracker:
    """Counts received, lost, duplicate and backwards frames of one direction's seq stream.

    A serial link does not reorder, so a backwards jump means the sender restarted its
    counter (reset, reconnect): the tracker counts it in ``backwards`` and re-anchors on
    the new number, so the frames after it count normally.
    """

    received: int = 0
    lost: int = 0
    duplicates: int = 0
    backwards: int = 0
    last: int | None = None

    def update(self, seq: int) -> None:
        """Account for one received frame with sequence number ``seq``."""
        self.received += 1
        gap = 0 if self.last is None else seq_gap(self.last, seq)
        if gap == SEQ_DUPLICATE:
            self.duplicates += 1
            return
        if gap == SEQ_BACKWARDS:
            self.backwards += 1
        else:
            self.lost += gap
        self.last = seq & 0xFFFF
