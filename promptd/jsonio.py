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


def encode_around(
    obj: dict[str, Any], key: str, pieces: tuple[bytes | memoryview, ...]
) -> tuple[bytes | memoryview, ...]:
    """`obj` encoded as pieces to send in one writev, with `pieces` (the raw JSON
    of `obj[key]`, possibly large) in its place and not copied again."""
    obj[key] = _HOLE
    try:
        head, _, tail = encode_json(obj).partition(b"\x00")
    finally:
        del obj[key]
    return head, *pieces, tail
