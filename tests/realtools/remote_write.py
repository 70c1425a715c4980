"""Prometheus remote write as a writer sends it: prometheus/prompb `WriteRequest{timeseries=1: TimeSeries{labels=1:
Label{name=1, value=2}, samples=2: Sample{value=1 (double), timestamp=2 (int64)}}}`, snappy block-compressed."""

import struct

import cramjam


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


def label_fields(labels: dict[str, str]) -> bytes:
    """A TimeSeries' encoded labels, sorted by name as Prometheus sends them."""
    return b"".join(_field(1, 2, _field(1, 2, k.encode()) + _field(2, 2, v.encode())) for k, v in sorted(labels.items()))


def write_request(series: list[bytes], value: float, timestamp_ms: int) -> bytes:
    """A snappy-compressed WriteRequest: one sample (`value` at `timestamp_ms`) for each series (its label fields)."""
    sample = _field(2, 2, _field(1, 1, struct.pack("<d", value)) + _field(2, 0, _varint(timestamp_ms)))
    raw = b"".join(_field(1, 2, labels + sample) for labels in series)
    return bytes(cramjam.snappy.compress_raw(raw))
