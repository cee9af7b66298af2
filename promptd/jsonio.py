"""JSON on the request path: one msgspec encoder and decoder, built once.

msgspec keeps integers beyond 64 bits exact both ways (orjson turns them into
floats when decoding and refuses them when encoding) and nests as deep as the
decoder allows, so whatever was decoded can be encoded again."""

from __future__ import annotations

from typing import Any

import msgspec

decode_json = msgspec.json.Decoder().decode
encode_json = msgspec.json.Encoder().encode

_HOLE = msgspec.Raw(b"\x00")  # never in encoded JSON otherwise: a NUL in a string is written \u0000


def encode_around(obj: dict[str, Any], key: str) -> tuple[bytes | memoryview, ...]:
    """`obj` encoded as pieces to send in one writev, with `obj[key]` (raw JSON,
    possibly large) not copied again."""
    value = obj[key]
    obj[key] = _HOLE
    try:
        head, _, tail = encode_json(obj).partition(b"\x00")
    finally:
        obj[key] = value
    return head, memoryview(value), tail
