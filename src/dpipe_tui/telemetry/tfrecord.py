"""TFRecord framing and the few protobuf messages of a TensorBoard event file, in pure Python.

Why not tensorboard/TensorFlow: they are hundreds of MB, slow to import, and not in the core
dependencies; the format we need is tiny. A record is ``u64 length | u32 masked crc32c(length) |
data | u32 masked crc32c(data)`` (little endian); ``data`` is an ``Event`` protobuf:
``Event{1: wall_time double, 2: step int64, 5: summary{1: repeated value{1: tag, 2: simple_value
float, 8: tensor{1: dtype, 4: tensor_content, 5: float_val, 6: double_val}}}}``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, table-driven."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class CorruptRecord(ValueError):
    """A length header fails its CRC: nothing after ``offset`` can be framed.

    Attributes:
        records: the payloads of the good records decoded before the corrupt header (keep them).
        offset: where the corrupt header starts (the reader may retry there later: a writer that has
            not finished a block on some filesystems shows zeros that become valid).
    """

    def __init__(self, message: str, records: list[bytes], offset: int) -> None:
        super().__init__(message)
        self.records = records
        self.offset = offset


def read_records(buf: bytes, offset: int = 0) -> tuple[list[bytes], int]:
    """Split complete records out of ``buf`` starting at ``offset``.

    Returns:
        The payloads of the complete records whose data CRC checks (others are skipped), and the offset
        just after the last complete record (a truncated tail is left for the next read).

    Raises:
        CorruptRecord: a length header is corrupt; it carries the good records read before it.
    """
    out: list[bytes] = []
    size = len(buf)
    while offset + 12 <= size:
        header = buf[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", buf[offset + 8 : offset + 12])
        if masked_crc(header) != len_crc:
            raise CorruptRecord(f"bad length CRC at offset {offset}", out, offset)
        end = offset + 12 + length + 4
        if end > size:
            break
        data = buf[offset + 12 : offset + 12 + length]
        (data_crc,) = struct.unpack("<I", buf[end - 4 : end])
        if masked_crc(data) == data_crc:
            out.append(data)
        offset = end
    return out, offset


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, int | float | bytes]]:
    """Decode one protobuf message into (field number, wire type, value); unknown types end it."""
    out: list[tuple[int, int, int | float | bytes]] = []
    pos, size = 0, len(buf)
    while pos < size:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        value: int | float | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            pos += length
        elif wire == 5:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            break
        out.append((num, wire, value))
    return out


@dataclass(frozen=True, slots=True)
class ScalarRecord:
    """One scalar of one event: ``tag`` at ``step``, written at ``wall_time``."""

    wall_time: float
    step: int
    tag: str
    value: float


def _tensor_value(buf: bytes) -> float | None:
    dtype = 0
    for num, _wire, value in _fields(buf):
        if num == 1 and isinstance(value, int):
            dtype = value
        elif num == 5 and isinstance(value, bytes):  # float_val: packed (wire 2) or single (wire 5)
            return float(struct.unpack_from("<f", value)[0])
        elif num == 6 and isinstance(value, bytes):
            return float(struct.unpack_from("<d", value)[0])
        elif num == 4 and isinstance(value, bytes) and value:
            if dtype == 1 and len(value) >= 4:
                return float(struct.unpack_from("<f", value)[0])
            if dtype == 2 and len(value) >= 8:
                return float(struct.unpack_from("<d", value)[0])
    return None


def decode_event(data: bytes) -> list[ScalarRecord]:
    """The scalars of one ``Event`` payload (histograms, images and text are ignored)."""
    wall_time, step = 0.0, 0
    summaries: list[bytes] = []
    try:
        for num, wire, value in _fields(data):
            if num == 1 and wire == 1 and isinstance(value, bytes):
                wall_time = struct.unpack("<d", value)[0]
            elif num == 2 and wire == 0 and isinstance(value, int):
                step = value - (1 << 64) if value >= 1 << 63 else value
            elif num == 5 and wire == 2 and isinstance(value, bytes):
                summaries.append(value)
        out: list[ScalarRecord] = []
        for summary in summaries:
            for num, _, value in _fields(summary):
                if num == 1 and isinstance(value, bytes):
                    record = _decode_value(value, wall_time, step)
                    if record is not None:
                        out.append(record)
        return out
    except (IndexError, struct.error):
        return []


def _decode_value(buf: bytes, wall_time: float, step: int) -> ScalarRecord | None:
    tag: str | None = None
    scalar: float | None = None
    for num, wire, value in _fields(buf):
        if num == 1 and isinstance(value, bytes):
            tag = value.decode("utf-8", "replace")
        elif num == 2 and wire == 5 and isinstance(value, bytes):
            scalar = float(struct.unpack("<f", value)[0])
        elif num == 8 and isinstance(value, bytes):
            scalar = _tensor_value(value)
    if tag is None or scalar is None:
        return None
    return ScalarRecord(wall_time, step, tag, scalar)
