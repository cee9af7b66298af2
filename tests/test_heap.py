"""The heap packing after a prompt set loads (promptd/prompts/heap.py)."""

from __future__ import annotations

from test_reload import prompt, served, wait_until

from promptd.prompts import heap

POOL = 16 * 1024  # bytes(31) takes a 64-byte block: 255 to a pool


def _pools(objects: list[bytes]) -> int:
    """How many of the allocator's pools the objects are spread over."""
    return len({id(obj) // POOL for obj in objects})


def test_this_python_has_the_pools_it_expects():
    assert heap._ENABLED


def test_after_a_fill_new_objects_go_to_whole_pools_not_into_holes():
    kept = [bytes(31) for _ in range(40_000)]
    del kept[::16]  # 2,500 holes, about 16 in each of the pools these filled
    scattered = [bytes(31) for _ in range(500)]
    assert _pools(scattered) >= 20  # into the holes
    del scattered

    assert heap.fill_holes() >= 2_500 - 500
    packed = [bytes(31) for _ in range(500)]
    assert _pools(packed) <= 3  # 255 to a whole pool


def test_a_new_fill_replaces_the_last_one():
    kept = [bytes(31) for _ in range(20_000)]
    del kept[::2]
    first = heap.fill_holes()
    second = heap.fill_holes()
    assert first >= 10_000 and second <= first + 1_000  # the last fill's blocks are reused, not added to


async def test_a_reload_fills_the_holes_the_retired_set_leaves(make_gateway):
    """After a reload is served, the retired set is released in a thread and the
    holes are filled again, a size class per step of the event loop."""
    client = await make_gateway(prompts={"p.toml": prompt("one")}, watch=False)
    heap.fill_holes()
    before = heap._fillers
    (client.config_dir / "prompts" / "p.toml").write_text(prompt("two"))
    assert await client.server.app.state.reloader.reload_now()  # what SIGHUP runs
    assert await served(client) == "two"

    async def refilled() -> bool:
        return heap._fillers is not before and len(heap._fillers) > 0

    await wait_until(refilled)
