"""Packing the heap after a prompt set is loaded.

Loading a prompt set allocates its objects between a great many temporaries
(parsed TOML, validation, template compilation), and freeing those leaves free
blocks scattered through the pools of CPython's small-object allocator. The
allocator serves new objects from partly used pools first, so afterwards every
request's short-lived objects land in those holes, spread over the set's
whole heap: with 10,000 prompts loaded, allocation and freeing cost twice as
much and a request about 5% more CPU than with a dozen (paired runs; callgrind,
which does not model the TLB, saw +0.4% instructions).

`fill_holes` takes every free block of the partly used pools (one bytes object
per block, sized to the block) and keeps them, so request objects go to whole
free pools, a few pages that stay in the caches. The fillers cost no new
memory: their blocks were already part of the process. A new fill replaces the
last one (after a reload the retired set's blocks are holes too); after a
reload it runs one size class at a time on the event loop (`filling`), so
requests go on between the steps.
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig
from collections.abc import Iterator

# CPython's small-object allocator on 64-bit builds (3.10+): 16 KiB pools with a
# 48-byte header, blocks in 16-byte size classes up to 512 bytes.
_POOL_SIZE = 16 * 1024
_POOL_HEADER = 48
_BYTES_HEADER = sys.getsizeof(b"")  # a bytes object of n bytes takes this + n
# The size classes a bytes object can fill (bytes(15) takes 48 bytes). The 16- and
# 32-byte classes are left: the loop's own temporaries (ints) are allocated there.
_CLASSES = range(48, 513, 16)
_MAX_PER_CLASS = 1 << 21  # a guard: a whole free pool is always found long before

_fillers: list[object] = []


def _pools_as_expected() -> bool:
    """Whether objects come from pymalloc pools of the expected geometry: a fresh
    pool's first block sits right after the pool's header, and the header starts
    with the count of the pool's allocated blocks."""
    if sys.implementation.name != "cpython" or not sysconfig.get_config_var("WITH_PYMALLOC"):
        return False
    if os.environ.get("PYTHONMALLOC", "pymalloc") not in ("pymalloc", ""):
        return False
    size = 512 - _BYTES_HEADER  # 31 blocks per pool: a few hundred objects fill several pools
    probe = [bytes(size) for _ in range(400)]
    if not any(id(block) % _POOL_SIZE == _POOL_HEADER for block in probe):
        return False
    in_pool: dict[int, int] = {}
    for block in probe:
        in_pool[_pool(block)] = in_pool.get(_pool(block), 0) + 1
    whole = [pool for pool, count in in_pool.items() if count == (_POOL_SIZE - _POOL_HEADER) // 512]
    return bool(whole) and all(_allocated_in(pool) == in_pool[pool] for pool in whole)


def _pool(block: object) -> int:
    return id(block) - id(block) % _POOL_SIZE


def _allocated_in(pool: int) -> int:
    """How many blocks of the pool are allocated (the header's `ref.count`), not
    counting the object that reads it, which may have been given one of them."""
    header = ctypes.c_uint.from_address(pool)
    return header.value - (_pool(header) == pool)


_ENABLED = _pools_as_expected()


def fill_holes() -> int:
    """Fill the free blocks of every partly used pool at once; returns how many were filled."""
    return sum(filling())


def filling() -> Iterator[int]:
    """The fill, one size class per step (each yields how many blocks it filled);
    it replaces the last fill once it has run to its end."""
    global _fillers
    if not _ENABLED:
        return
    _fillers = []  # the last fill's blocks are free again, and filled again below
    fillers: list[object] = []
    for size in _CLASSES:
        before = len(fillers)
        _fill_class(fillers, size)
        yield len(fillers) - before
    _fillers = fillers


def _fill_class(fillers: list[object], size: int) -> None:
    """Allocate blocks of one size class until one is the only allocated block of
    its pool: the allocator had no partly used pool of the class left, and took a
    wholly free one. From then on the class's allocations come from whole free pools."""
    length = size - _BYTES_HEADER
    for _ in range(_MAX_PER_CLASS):
        block = bytes(length)
        if _allocated_in(_pool(block)) == 1:
            return  # freed again here: its pool is whole and free again
        fillers.append(block)
