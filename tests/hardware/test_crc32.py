"""The frame CRC is a CRC-32 (protocol version 3), checked against a bitwise reference written here.

The corruption tests are errors that version 2's CRC-16/CCITT-FALSE provably misses (its
generator divides them) and that any CRC-32 catches: two bit flips 32767 bits apart in a
64 x 64 IMAGE frame (past 32751 covered bits the CRC-16's Hamming distance is 2) and a
17-bit burst. Only the encode/decode API that predates version 3 is used, so the tests
say what changed on the wire, not how.
"""

from __future__ import annotations

import numpy as np
import pytest
from crc_reference import crc16_ref, crc32_ref
from hypothesis import given
from hypothesis import strategies as st

from sensorimotor.hardware.framing import (
    HEADER,
    MAX_PAYLOAD,
    CrcError,
    Frame,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    decode_body,
    encode_frame,
)


def body_of(frame: Frame) -> bytes:
    return cobs_decode(encode_frame(frame)[:-1])


def flip(data: bytes, bits: list[int]) -> bytes:
    """``data`` with the given bits inverted, numbered MSB first from the start (as CRC-16/CCITT reads them)."""
    out = bytearray(data)
    for i in bits:
        out[i // 8] ^= 0x80 >> (i % 8)
    return bytes(out)


def test_reference_check_values() -> None:
    assert crc32_ref(b"123456789") == 0xCBF43926
    assert crc16_ref(b"123456789") == 0x29B1


@given(msg_type=st.integers(0, 255), seq=st.integers(0, 0xFFFF), payload=st.binary(max_size=600))
def test_frame_ends_with_the_crc32_of_header_and_payload(msg_type: int, seq: int, payload: bytes) -> None:
    body = body_of(Frame(msg_type, seq, 1000, payload))
    assert len(body) == HEADER.size + len(payload) + 4
    assert body[-4:] == crc32_ref(body[:-4]).to_bytes(4, "little")


def test_crc_of_the_largest_frame() -> None:
    body = body_of(Frame(0x11, 1, 2, bytes(range(256)) * (MAX_PAYLOAD // 256)))
    assert int.from_bytes(body[-4:], "little") == crc32_ref(body[:-4])


IMAGE_PIXELS = np.random.default_rng(3).integers(0, 256, 64 * 64, dtype=np.uint8).tobytes()
CRC16_BLIND_SPOTS = {
    # x^32767 + 1 is a multiple of the CRC-16 generator: two flips 32767 bits apart cancel in it
    "two bits 32767 apart": [80, 80 + 32767],
    # the generator itself, x^16 + x^12 + x^5 + 1, as a 17-bit burst
    "17-bit burst": [200 + j for j in range(17) if (0x11021 >> (16 - j)) & 1],
}


@pytest.mark.parametrize("bits", CRC16_BLIND_SPOTS.values(), ids=CRC16_BLIND_SPOTS.keys())
def test_errors_that_crc16_misses_are_caught(bits: list[int]) -> None:
    """The fuzzer's finding (a corrupted IMAGE frame accepted), made deterministic."""
    image = Frame(0x11, 5, 123_456, bytes((64, 64)) + IMAGE_PIXELS)
    body = body_of(image)
    covered = body[: HEADER.size + len(image.payload)]
    assert len(covered) * 8 > max(bits)
    damaged = flip(covered, bits)
    assert crc16_ref(damaged) == crc16_ref(covered)  # version 2's CRC would have passed it
    with pytest.raises(CrcError):
        decode_body(damaged + body[len(covered) :])
    decoder = StreamDecoder()  # and on the line, COBS-encoded, it is dropped and counted
    assert decoder.feed(cobs_encode(damaged + body[len(covered) :]) + b"\x00" + encode_frame(image)) == [image]
    assert decoder.stats.crc_errors == 1


@given(start=st.integers(0, 8 * 300 - 32), length=st.integers(1, 32), pattern=st.integers(0, 2**32 - 1))
def test_every_burst_of_up_to_32_bits_is_caught(start: int, length: int, pattern: int) -> None:
    """A CRC of degree 32 catches every error burst no longer than 32 bits, CRC field included."""
    body = body_of(Frame(0x10, 9, 77, bytes(range(37)) * 8))  # 300-byte body
    bits = [start + j for j in range(length) if j in (0, length - 1) or (pattern >> j) & 1]
    with pytest.raises(CrcError):
        decode_body(flip(body, bits))
