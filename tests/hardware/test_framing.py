"""Tests of sensorimotor.hardware.framing: COBS vectors, CRC, frame encode/decode, versions, stream resync, seq numbers.

The CRC-32 against a bitwise reference and the errors it catches that CRC-16 missed: ``test_crc32.py``.
"""

from __future__ import annotations

import itertools
import re

import pytest
from crc_reference import crc16_ref, crc32_ref
from hypothesis import given
from hypothesis import strategies as st

from sensorimotor.hardware.framing import (
    CRC16_VERSIONS,
    HEADER,
    MAX_BODY,
    MAX_ENCODED,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    SEQ_BACKWARDS,
    SEQ_DUPLICATE,
    CobsError,
    CrcError,
    Frame,
    FrameSizeError,
    FramingError,
    SeqTracker,
    StreamDecoder,
    VersionError,
    cobs_decode,
    cobs_encode,
    cobs_max_encoded,
    crc16,
    crc32,
    crc_size,
    decode_body,
    detect_version,
    encode_body,
    encode_frame,
    seq_gap,
)

RUN_01_FE = bytes(range(1, 255))  # 254 non-zero bytes

# Examples from Cheshire & Baker's COBS paper as listed on Wikipedia (delimiter excluded).
COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (RUN_01_FE, b"\xff" + RUN_01_FE),
    (b"\x00" + RUN_01_FE, b"\x01\xff" + RUN_01_FE),
    (RUN_01_FE + b"\xff", b"\xff" + RUN_01_FE + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


def frame(seq: int = 0, payload: bytes = b"\x01\x02\x00\x03", msg_type: int = 0x10) -> Frame:
    return Frame(msg_type=msg_type, seq=seq, timestamp_us=1000 + seq, payload=payload)


def reencode(wire: bytes, edit: int) -> bytes:
    """Flip bits of body byte ``edit`` and re-stuff: a frame with a bad CRC but valid COBS."""
    body = bytearray(cobs_decode(wire[:-1]))
    body[edit] ^= 0x5A
    return cobs_encode(bytes(body)) + b"\x00"


frames_strategy = st.lists(
    st.builds(
        Frame,
        msg_type=st.integers(0, 255),
        seq=st.integers(0, 0xFFFF),
        timestamp_us=st.integers(0, 0xFFFFFFFF),
        payload=st.binary(max_size=600),
    ),
    max_size=8,
)


# ----------------------------------------------------------------------------- COBS


@pytest.mark.parametrize(("raw", "encoded"), COBS_VECTORS)
def test_cobs_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_decode_accepts_non_canonical_trailing_empty_block() -> None:
    # Some encoders end a full final block with an extra code 1; it adds no data.
    assert cobs_decode(b"\xff" + RUN_01_FE + b"\x01") == RUN_01_FE


@pytest.mark.parametrize("bad", [b"", b"\x05\x11\x22", b"\x02\x00", b"\x00", b"\x03\x11\x22\x09"])
def test_cobs_decode_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(CobsError):
        cobs_decode(bad)
    assert issubclass(CobsError, FramingError) and issubclass(FramingError, ValueError)


@given(st.binary(max_size=3000))
def test_cobs_round_trip(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert b"\x00" not in encoded
    assert len(encoded) <= cobs_max_encoded(len(data))
    assert cobs_decode(encoded) == data


@given(st.lists(st.sampled_from([b"\x00", b"\x07", b"\x00" * 300, b"\x09" * 253, b"\x05" * 254, b"\x03" * 509])))
def test_cobs_round_trip_block_boundaries(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert cobs_decode(cobs_encode(data)) == data


# ----------------------------------------------------------------------------- CRC and frames


def test_crc_check_values() -> None:
    assert crc32(b"123456789") == 0xCBF43926  # the frame CRC from version 3
    assert crc16(b"123456789") == 0x29B1  # versions 1 and 2, still read to name such a device


@given(st.binary(max_size=2000))
def test_crcs_match_bitwise_references(data: bytes) -> None:
    assert crc32(data) == crc32_ref(data)
    assert crc16(data) == crc16_ref(data)


def test_crc_follows_the_version() -> None:
    assert PROTOCOL_VERSION == 3 and crc_size(3) == 4 and crc_size(255) == 4
    assert crc_size(1) == crc_size(2) == 2 and sorted(CRC16_VERSIONS) == [1, 2]


def test_max_encoded_is_tight() -> None:
    assert HEADER.size + MAX_PAYLOAD + 4 == MAX_BODY == 4620
    assert MAX_ENCODED == 4640
    assert len(cobs_encode(b"\x01" * MAX_BODY)) + 1 == MAX_ENCODED
    largest = Frame(0x11, 0x0101, 0x01010101, b"\x01" * MAX_PAYLOAD)
    assert len(encode_frame(largest)) <= MAX_ENCODED


def test_frame_layout() -> None:
    wire = encode_frame(Frame(msg_type=0x20, seq=0x1234, timestamp_us=0xAABBCCDD, payload=b"\x7f"))
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    body = cobs_decode(wire[:-1])
    assert body[:8] == bytes([PROTOCOL_VERSION, 0x20, 0x34, 0x12, 0xDD, 0xCC, 0xBB, 0xAA])
    assert body[8:9] == b"\x7f"
    assert int.from_bytes(body[9:], "little") == crc32_ref(body[:9])
    assert body == bytes.fromhex("03 20 34 12 dd cc bb aa 7f 85 ab 67 24")


def test_version_2_frame_layout() -> None:
    """A frame of version 2 (a twin configured so) still ends with the CRC-16 it had then."""
    body = encode_body(Frame(0x20, 0x1234, 0xAABBCCDD, b"\x7f", version=2))
    assert body[:9] == bytes.fromhex("02 20 34 12 dd cc bb aa 7f")
    assert body[9:] == crc16_ref(body[:9]).to_bytes(2, "little")
    assert decode_body(body, version=2) == Frame(0x20, 0x1234, 0xAABBCCDD, b"\x7f", version=2)


@given(
    msg_type=st.integers(0, 255),
    seq=st.integers(0, 1 << 40),
    timestamp_us=st.integers(0, 1 << 40),
    payload=st.binary(max_size=MAX_PAYLOAD),
)
def test_frame_round_trip(msg_type: int, seq: int, timestamp_us: int, payload: bytes) -> None:
    decoded = decode_body(cobs_decode(encode_frame(Frame(msg_type, seq, timestamp_us, payload))[:-1]))
    assert decoded == Frame(msg_type, seq & 0xFFFF, timestamp_us & 0xFFFFFFFF, payload)


def test_encode_frame_rejects_oversize_payload() -> None:
    with pytest.raises(ValueError, match="MAX_PAYLOAD"):
        encode_frame(frame(payload=bytes(MAX_PAYLOAD + 1)))
    with pytest.raises(ValueError):
        encode_frame(frame(msg_type=256))


def test_decode_body_errors() -> None:
    body = cobs_decode(encode_frame(frame())[:-1])
    with pytest.raises(FrameSizeError):
        decode_body(body[:11])
    corrupted = bytearray(body)
    corrupted[9] ^= 0x01
    with pytest.raises(CrcError, match="CRC-32 mismatch"):
        decode_body(bytes(corrupted))
    with pytest.raises(VersionError):
        decode_body(cobs_decode(encode_frame(Frame(0x10, 0, 0, b"", version=PROTOCOL_VERSION + 1))[:-1]))
    unsigned = HEADER.pack(PROTOCOL_VERSION, 0x10, 0, 0) + bytes(MAX_PAYLOAD + 1)
    with pytest.raises(FrameSizeError):
        decode_body(unsigned + crc32_ref(unsigned).to_bytes(4, "little"))
    short = HEADER.pack(PROTOCOL_VERSION, 0x03, 0, 0)  # a v3 START with the 2-byte CRC of version 2
    with pytest.raises(FrameSizeError):
        decode_body(short + crc16_ref(short).to_bytes(2, "little"))


def v2_body(msg_type: int, payload: bytes = b"", seq: int = 0) -> bytes:
    """A frame body as a device of protocol version 2 sends it, built from the bitwise CRC-16 reference."""
    unsigned = bytes([2, msg_type]) + seq.to_bytes(2, "little") + (1000).to_bytes(4, "little") + payload
    return unsigned + crc16_ref(unsigned).to_bytes(2, "little")


def test_version_2_frames_are_recognised_by_their_crc16() -> None:
    sensor, describe = v2_body(0x10, b"\x01" + bytes(28)), v2_body(0x02, (2).to_bytes(2, "little") + b"x")
    assert detect_version(sensor) == detect_version(describe) == detect_version(v2_body(0x03)) == 2
    with pytest.raises(VersionError, match="protocol version 2, expected 3") as err:
        decode_body(sensor)
    assert err.value.version == 2
    with pytest.raises(VersionError):
        decode_body(v2_body(0x03))  # 10 bytes: shorter than a version-3 frame, intact as a version-2 one
    # HELLO and DESCRIBE pass whatever the version, so that the payload can say which.
    assert decode_body(describe) == Frame(0x02, 0, 1000, b"\x02\x00x", version=2)
    # A version-3 receiver's frames, read by a version-2 one (the twin configured so): the same, mirrored.
    with pytest.raises(VersionError, match="protocol version 3, expected 2"):
        decode_body(encode_body(frame()), version=2)


@pytest.mark.parametrize("edit", [0, 1, 5, 12])
def test_damaged_version_2_frame_is_a_crc_error(edit: int) -> None:
    body = bytearray(v2_body(0x10, b"\x01" + bytes(28)))
    body[edit] ^= 0x01  # the version byte (0 -> 3: CRC-32 read, no match), the type, the stamp, the payload
    assert detect_version(bytes(body)) is None
    with pytest.raises(CrcError):
        decode_body(bytes(body))


# ----------------------------------------------------------------------------- StreamDecoder


@given(frames_strategy, st.lists(st.integers(0, 10_000), max_size=12))
def test_stream_decoder_any_chunking(frames: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in frames)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    decoder = StreamDecoder()
    out = [f for a, b in itertools.pairwise(bounds) for f in decoder.feed(stream[a:b])]
    assert out == frames
    assert decoder.stats.frames_ok == len(frames)
    assert decoder.stats.frames_bad == decoder.stats.bytes_discarded == decoder.buffered == 0


def test_stream_decoder_byte_by_byte() -> None:
    frames = [frame(i, payload=bytes([i]) * i) for i in range(5)]
    decoder = StreamDecoder()
    stream = b"".join(encode_frame(f) for f in frames)
    assert [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])] == frames


def test_leading_and_repeated_delimiters_are_silent() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"\x00\x00" + encode_frame(frame()) + b"\x00") == [frame()]
    assert decoder.stats.frames_bad == decoder.stats.bytes_discarded == 0
    assert decoder.last_error is None


def test_garbage_before_and_between_frames_is_skipped_and_counted() -> None:
    garbage = [b"\x13\x37\x42", b"\xff\xfe\xfd\x01\x02", b"\x05\x01"]
    frames = [frame(i) for i in range(3)]
    stream = b"".join(g + b"\x00" + encode_frame(f) for g, f in zip(garbage, frames, strict=False))
    decoder = StreamDecoder()
    assert decoder.feed(stream) == frames
    assert decoder.stats.frames_bad == 3
    assert decoder.stats.bytes_discarded == sum(map(len, garbage))
    assert decoder.last_error is not None


def test_corrupted_frame_is_rejected_and_next_decoded() -> None:
    decoder = StreamDecoder()
    bad = reencode(encode_frame(frame(1)), edit=HEADER.size + 1)
    assert decoder.feed(encode_frame(frame(0)) + bad + encode_frame(frame(2))) == [frame(0), frame(2)]
    assert decoder.stats.crc_errors == 1 and decoder.stats.frames_ok == 2
    assert decoder.stats.bytes_discarded == len(bad) - 1
    assert "CRC" in (decoder.last_error or "")


def test_wrong_version_is_rejected() -> None:
    decoder = StreamDecoder()
    other = encode_frame(Frame(0x10, 5, 0, b"", version=PROTOCOL_VERSION + 1))
    assert decoder.feed(other + encode_frame(frame(6))) == [frame(6)]
    assert decoder.stats.version_errors == 1


def test_stream_of_version_2_frames_is_counted_as_such() -> None:
    """A version-2 device streaming: version errors (not CRC errors), and a streak none of ours breaks."""
    decoder = StreamDecoder()
    v2 = [cobs_encode(v2_body(0x10, b"\x01" + bytes(28), seq)) + b"\x00" for seq in range(3)]
    assert decoder.feed(b"".join(v2)) == []
    assert (decoder.stats.version_errors, decoder.stats.crc_errors) == (3, 0)
    assert (decoder.foreign_version, decoder.foreign_streak) == (2, 3)
    assert decoder.feed(b"\x13\x37\x00") == [] and decoder.foreign_streak == 3  # noise does not break it
    assert decoder.feed(encode_frame(frame())) == [frame()] and decoder.foreign_streak == 0  # a frame of ours does


def test_overlong_run_is_discarded_and_decoder_recovers() -> None:
    decoder = StreamDecoder()
    run = b"\x01" * (3 * MAX_ENCODED)
    for i in range(0, len(run), 1000):
        assert decoder.feed(run[i : i + 1000]) == []
        assert decoder.buffered < MAX_ENCODED  # memory stays bounded
    assert decoder.feed(b"\x00" + encode_frame(frame(9))) == [frame(9)]
    assert decoder.stats.size_errors == 1  # one error for the whole run
    assert decoder.stats.bytes_discarded == len(run)
    assert decoder.stats.frames_ok == 1


def test_overlong_frame_in_one_feed_is_a_size_error() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"\x01" * MAX_ENCODED + b"\x00" + encode_frame(frame())) == [frame()]
    assert decoder.stats.size_errors == 1


def test_cobs_and_short_frames_are_counted() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"\x09\x01\x00" + b"\x02\x01\x00") == []
    assert decoder.stats.cobs_errors == 1 and decoder.stats.size_errors == 1


@given(st.binary(max_size=2000), frames_strategy)
def test_stream_decoder_never_raises_and_resyncs(garbage: bytes, frames: list[Frame]) -> None:
    decoder = StreamDecoder()
    decoder.feed(garbage)  # arbitrary bytes: may or may not contain frames, must not raise
    out = decoder.feed(b"\x00" + b"".join(encode_frame(f) for f in frames))
    assert out[len(out) - len(frames) :] == frames


# ----------------------------------------------------------------------------- sequence numbers


@pytest.mark.parametrize(
    ("prev", "new", "gap"),
    [
        (0, 1, 0),
        (65535, 0, 0),
        (65534, 1, 2),
        (10, 20, 9),
        (5, 5, SEQ_DUPLICATE),
        (5, 4, SEQ_BACKWARDS),
        (0, 65535, SEQ_BACKWARDS),
    ],
)
def test_seq_gap(prev: int, new: int, gap: int) -> None:
    assert seq_gap(prev, new) == gap


def test_seq_tracker_counts_loss_and_duplicates_across_wrap() -> None:
    tracker = SeqTracker()
    for seq in (65534, 65535, 0, 3, 3, 4):
        tracker.update(seq)
    assert (tracker.received, tracker.lost, tracker.duplicates, tracker.backwards) == (6, 2, 1, 0)


def test_seq_tracker_reanchors_after_sender_restart() -> None:
    tracker = SeqTracker()
    for seq in (100, 101, 0, 1, 2):
        tracker.update(seq)
    assert (tracker.received, tracker.lost, tracker.backwards) == (5, 0, 1)


def test_decoder_fuzzer_finds_nothing_in_a_short_run() -> None:
    """`make fuzz` runs a million inputs; here 20,000, so a regression shows up in `make test`."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_decoder.py"
    proc = subprocess.run([sys.executable, str(script), "--inputs", "20000", "--seed", "1"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failures (exceptions, no resync, unbounded buffer): 0" in proc.stdout
    # Accepted corruptions per message type, none with the CRC-32 in this run (seeded: the same inputs each time).
    rows = re.findall(r"^ +([A-Z]+) +([\d,]+) +(\d+) +< ([\d.e+-]+) ", proc.stdout, re.MULTILINE)
    types = ["HELLO", "DESCRIBE", "START", "STOP", "SENSOR", "IMAGE", "STATUS", "REFERENCE", "COMMAND"]
    assert [r[0] for r in rows] == types, proc.stdout
    for _, corrupted, accepted, bound in rows:
        assert accepted == "0" and float(bound) == pytest.approx(3 / int(corrupted.replace(",", "")), rel=0.06)
