"""JSON on the request path: one msgspec encoder and decoder, built once.

msgspec keeps integers beyond 64 bits exact both ways (orjson turns them into
floats when decoding and refuses them when encoding) and nests as deep as the
decoder allows, so whatever was decoded can be encoded again."""

from __future__ import annotations

import msgspec

decode_json = msgspec.json.Decoder().decode
encode_json = msgspec.json.Encoder().encode
