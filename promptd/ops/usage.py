"""Token counts from an upstream answer's `usage`, found without decoding the
whole answer: `usage` sits at the end of a completion (and in the last events of
a stream), so the search runs backwards from there and only the usage object
itself is decoded."""

from __future__ import annotations

from typing import Any

import msgspec

_KEY = b'"usage"'


def find_usage(data: bytes) -> dict[str, Any] | None:
    """The last `"usage": {...}` object in `data`, decoded; None if there is none."""
    at = data.rfind(_KEY)
    while at != -1:
        start = data.find(b"{", at + len(_KEY))
        if start != -1 and data[at + len(_KEY) : start].strip() == b":":
            end = _object_end(data, start)
            if end is not None:
                try:
                    usage = msgspec.json.decode(data[start:end])
                except msgspec.DecodeError:
                    usage = None
                if usage.__class__ is dict:
                    return usage
        at = data.rfind(_KEY, 0, at)
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


def token_counts(usage: dict[str, Any]) -> tuple[int, int, int]:
    """(prompt, completion, cached) from Chat Completions or Responses usage."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if details.__class__ is dict else 0
    return (
        prompt if prompt.__class__ is int else 0,
        completion if completion.__class__ is int else 0,
        cached if cached.__class__ is int else 0,
    )
