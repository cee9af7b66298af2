"""Reading a request body: the size limit, and decoding it as one JSON object."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from promptd.errors import BadRequest, BodyTooLarge


async def read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body is larger than max_body_bytes ({limit} bytes)", code="body_too_large")


def decode_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if body.__class__ is not dict:
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return body
