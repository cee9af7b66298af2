"""Timeouts checked by one task per set of watched objects, a few times per
timeout, instead of a timer per request: a request costs a set insertion."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import TypeVar

T = TypeVar("T")


def sweep_interval(timeout: float) -> float:
    """How often to check a timeout: a quarter of it, within 50 ms .. 1 s."""
    return max(0.05, min(1.0, timeout / 4))


async def sweep(watched: Collection[T], interval: float, check: Callable[[T, float], None]) -> None:
    """Forever: every `interval`, `check(item, now)` for each item watched then."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        now = loop.time()
        for item in list(watched):
            check(item, now)
