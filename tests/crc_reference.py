"""Bitwise reference CRCs, written from their definitions: the oracles the framing's CRCs are tested against."""

from __future__ import annotations


def crc32_ref(data: bytes) -> int:
    """CRC-32/IEEE (protocol version 3), bit by bit: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def crc16_ref(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (protocol versions 1 and 2), bit by bit: polynomial 0x1021, init 0xFFFF, MSB first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc
