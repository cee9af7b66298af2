"""Token counts from an upstream answer's `usage`, found without decoding the
whole answer: `usage` sits at the end of a completion (and in the last events of
a stream), so the search runs backwards from there and only the usage object
itself is decoded, straight into the three counts."""

from __future__ import annotations

import msgspec

_KEY = b'"usage"'
_WHITESPACE = b" \t\r\n"
_CLOSE = ord("}")


class _Details(msgspec.Struct):
    cached_tokens: int = 0


class _Usage(msgspec.Struct):
    """Chat Completions (`prompt_tokens`, ...) or Responses (`input_tokens`, ...) usage;
    other members are skipped."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt_tokens_details: _Details | None = None
    input_tokens_details: _Details | None = None

    def counts(self) -> tuple[int, int, int]:
        """(prompt, completion, cached)."""
        details = self.prompt_tokens_details or self.input_tokens_details
        return (
            self.prompt_tokens if self.prompt_tokens is not None else self.input_tokens or 0,
            self.completion_tokens if self.completion_tokens is not None else self.output_tokens or 0,
            details.cached_tokens if details is not None else 0,
        )


_decode = msgspec.json.Decoder(_Usage).decode


def usage_counts(data: bytes) -> tuple[int, int, int] | None:
    """(prompt, completion, cached) from the last `"usage": {...}` object in `data`;
    None if there is none (or it is not a usage object)."""
    at = data.rfind(_KEY)
    while at != -1:
        start = data.find(b"{", at + len(_KEY))
        if start != -1 and data[at + len(_KEY) : start].strip() == b":":
            usage = _usage_at(data, start)
            if usage is not None:
                return usage.counts()
        at = data.rfind(_KEY, 0, at)
    return None


def _usage_at(data: bytes, start: int) -> _Usage | None:
    # Usually the last member of the answer: the object ends where the answer's does
    # (found without copying the answer, which can be large).
    last = len(data) - 1
    while last > start and data[last] in _WHITESPACE:
        last -= 1
    if data[last] == _CLOSE:
        try:
            return _decode(data[start:last])
        except msgspec.DecodeError:  # (ValidationError included) not the last member
            pass
    end = _object_end(data, start)
    if end is None:
        return None
    try:
        return _decode(data[start:end])
    except msgspec.DecodeError:
        return None


def _object_end(data: bytes, start: int) -> int | None:
    """The index after the object that opens at `start`: the first `}` at which the
    braces balance (a usage object holds numbers and nested objects, no strings
    with braces; a slice that still does not decode is skipped by the caller)."""
    end = start
    limit = min(len(data), start + 4096)  # a usage object is small
    while True:
        end = data.find(b"}", end + 1, limit)
        if end == -1:
            return None
        if data.count(b"{", start, end + 1) == data.count(b"}", start, end + 1):
            return end + 1
