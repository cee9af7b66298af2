"""Reading a request body (the size limit, the client timeout), and decoding
it as one JSON object.

Bodies are decoded with msgspec (`jsonio.py`): integers beyond 64 bits stay
exact. Bodies without prompt fields are forwarded as received, never re-encoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from promptd.compiler.fields import PROMPT_FIELDS
from promptd.errors import BadRequest, PromptdError
from promptd.http.messages import Request, body_too_large
from promptd.jsonio import decode_json


async def read_body(request: Request, limit: int, timeout: float) -> bytes | bytearray:
    """The whole body, decoded from its Content-Encoding; it must arrive within `timeout`."""
    length = request.content_length
    if length is not None and length > limit:
        raise body_too_large(limit)
    if request.complete:  # the whole body is here already: no deadline needed
        return await request.read(limit)
    try:
        async with asyncio.timeout(timeout):
            return await request.read(limit)
    except TimeoutError:
        request.connection.stop_lingering()
        raise PromptdError(
            f"the request body did not arrive within client_timeout_s ({timeout:g} s)",
            code="request_timeout",
            headers={"Connection": "close"},
        ) from None


def _decoded(decode: Callable[[bytes], Any], raw: bytes) -> Any:
    """`decode(raw)`, its failures as the 400s a client reads."""
    try:
        return decode(raw)
    except msgspec.ValidationError:
        raise BadRequest("request body must be a JSON object", code="invalid_json") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("request body nests too deep to be decoded", code="invalid_json") from None


def decode_object(raw: bytes) -> dict[str, Any]:
    body = _decoded(decode_json, raw)
    if body.__class__ is not dict:
        raise BadRequest("request body must be a JSON object", code="invalid_json")
    return body


# Bodies at least this large are split at the top level (`top_level`) instead of decoded whole.
SPLIT_FROM_BYTES = 16 * 1024


def _is_none(value: Any) -> bool:
    return value is None


def is_raw_null(value: msgspec.Raw) -> bool:
    """A raw JSON member that is `null` (a large member is not looked at: it cannot be)."""
    return len(value) <= 64 and bytes(value).strip() == b"null"


def prompt_fields_of(body: Mapping[str, Any], is_null: Callable[[Any], bool] = _is_none) -> tuple[bool, bool]:
    """(any prompt field with a value, any prompt field that is null) of a body's top level."""
    if PROMPT_FIELDS.isdisjoint(body):
        return False, False
    valued = nulls = False
    for name in PROMPT_FIELDS.intersection(body):
        if is_null(body[name]):
            nulls = True
        else:
            valued = True
    return valued, nulls


class TopLevel:
    """A body split into its top-level members, each kept as raw JSON: one pass
    over the bytes (msgspec checks the whole document) and no Python objects for
    what is only forwarded, such as a long `messages` array."""

    __slots__ = ("members",)

    def __init__(self, members: dict[str, msgspec.Raw]) -> None:
        self.members = members

    def prompt_fields(self) -> tuple[bool, bool]:
        return prompt_fields_of(self.members, is_raw_null)

    def model_name(self) -> str | None:
        """`model` when it is a non-empty string."""
        raw = self.members.get("model")
        if raw is None:
            return None
        value = decode_json(raw)
        return value if value.__class__ is str and value else None

    def decoded(self, keep_raw: str | None = None) -> dict[str, Any]:
        """The members as Python values, but `keep_raw`'s, which stays raw JSON."""
        return {name: raw if name == keep_raw else decode_json(raw) for name, raw in self.members.items()}


_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode


def top_level(raw: bytes) -> TopLevel:
    """Check that `raw` is one JSON object and split its top level."""
    return TopLevel(_decoded(_top_level, raw))
