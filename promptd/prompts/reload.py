"""Hot reload: rebuild the prompt set aside when files change, then serve it.

All fallible work (reading, parsing, validating) happens in `PromptLoader.build`,
off the event loop; the swap is one attribute assignment that cannot fail, so
a request sees the old set or the new one, never a mix. A set that fails to
build is never applied: the last good set keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import stat
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import watchfiles

from promptd.errors import ConfigError
from promptd.prompts.files import Prompt
from promptd.prompts.heap import filling
from promptd.prompts.promptset import PromptLoader, PromptSet, scan_packed
from promptd.prompts.served import ServedPrompts

log = logging.getLogger("promptd.prompts.reload")

# watchfiles yields once the tree has been quiet for STEP_MS (at most DEBOUNCE_MS
# after the first change), well inside the 0.5 s change-to-served budget.
STEP_MS = 40
DEBOUNCE_MS = 300
# A failed build is reported only if no further change arrives within this time:
# editors that truncate and then write, or write a temporary then rename, leave
# a moment where the directory is inconsistent.
SETTLE_S = 0.25
REBUILD_SWITCH_INTERVAL_S = 0.0005
# Sets of at least this many files are rebuilt in a builder process: reading and
# parsing thousands of files in a thread would share the GIL with the event loop
# for seconds. Smaller sets rebuild in milliseconds, in a thread.
PROCESS_BUILD_MIN_FILES = 1000
# How often the prompt paths themselves are checked (symlink swaps, recreated directories).
PATH_POLL_S = 0.2
WATCH_SETTLE_S = 0.1


def _release(prompts: list[Prompt]) -> None:
    """Drop a retired set's prompts one at a time, so the GIL can switch between
    them. The set itself is left intact and read-only: a handler that still holds
    it sees every prompt, and whatever it still holds is freed when it lets go."""
    while prompts:
        prompts.pop()


async def _retire(prompts: list[Prompt]) -> None:
    """Release a retired set in a thread, then fill the holes it and the build left
    in the allocator's pools (`heap.py`), a size class per step of the event loop."""
    await asyncio.get_running_loop().run_in_executor(None, _release, prompts)
    for _ in filling():
        await asyncio.sleep(0)


def _warm_up() -> None:
    """Runs in the builder process as soon as it exists, so the first edit does not wait for it to start."""


class Reloader:
    """Rebuilds the prompt set on request (a file event, SIGHUP) and hands a good
    one to `ServedPrompts`; one rebuild at a time."""

    def __init__(self, loader: PromptLoader, served: ServedPrompts) -> None:
        self.loader = loader
        self.served = served
        self._dirty = asyncio.Event()
        self._builder: ProcessPoolExecutor | None = None
        self._retiring: asyncio.Task[None] | None = None

    def _builder_pool(self) -> ProcessPoolExecutor:
        if self._builder is None:
            self._builder = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._builder

    def start_builder(self) -> None:
        if self.loader.file_count >= PROCESS_BUILD_MIN_FILES:
            self._builder_pool().submit(_warm_up)

    def close(self) -> None:
        if self._retiring is not None:
            self._retiring.cancel()
        if self._builder is not None:
            self._builder.shutdown(wait=False, cancel_futures=True)
            self._builder = None

    async def _build(self) -> PromptSet:
        """Scan and compile in the builder process for large sets (only changed files
        travel back), in a thread otherwise; cross-check and assemble in a thread."""
        loader = self.loader
        if loader.file_count >= PROCESS_BUILD_MIN_FILES:
            known = await asyncio.to_thread(loader.known)
            try:
                packed = await asyncio.get_running_loop().run_in_executor(
                    self._builder_pool(), scan_packed, loader.directories, known
                )
            except BrokenProcessPool:
                log.error("the prompt builder process died; building in this process")
                self._builder = None
            else:
                return await asyncio.to_thread(loader.assemble_packed, *packed)
        return await asyncio.to_thread(loader.build)

    def request_reload(self) -> None:
        """Ask for a rebuild (a file event or SIGHUP); the reload task does it."""
        self._dirty.set()

    def apply(self, new: PromptSet) -> bool:
        """Serve `new`; False when it equals what is served (no new generation)."""
        retired = self.served.apply(new)
        # Freeing a large set at once is one C-level cascade that holds the GIL
        # (250 ms for 10,000 prompts): the retired prompts are referenced from a
        # list, so the set's own mapping goes cheaply, and a thread drops them one by one.
        changed = retired is not None
        dropped = list((retired if retired is not None else new).prompts.values())
        del retired
        if self._retiring is not None:
            self._retiring.cancel()  # a newer set is retiring the last one: its fill starts over
        self._retiring = asyncio.get_running_loop().create_task(_retire(dropped))
        return changed

    async def reload_now(self, settle: bool = False) -> bool:
        """Build aside and apply; True when a new generation was applied. With
        `settle`, a failure is reported only if nothing changes for SETTLE_S."""
        started = time.perf_counter()
        # While the build thread holds the GIL, the event loop waits for it up to
        # the switch interval each time it wakes: 5 ms by default, 0.5 ms here.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, REBUILD_SWITCH_INTERVAL_S))
        try:
            new = await self._build()
        except ConfigError as exc:
            if settle:
                try:
                    await asyncio.wait_for(self._dirty.wait(), SETTLE_S)
                    return False  # changed again: the reload task rebuilds before judging
                except TimeoutError:
                    pass
            self.served.fail(exc.problems)
            return False
        finally:
            sys.setswitchinterval(switch_interval)
        changed = self.apply(new)
        for warning in new.warnings if changed else ():
            log.warning(warning)
        log.info(
            "prompt set reloaded" if changed else "prompt set unchanged",
            extra={
                "generation": self.served.current.generation,
                "hash": self.served.current.hash,
                "prompts": len(self.served.current.prompts),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return changed

    async def run(self) -> None:
        """The reload task: one rebuild at a time, for as long as the app runs."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.reload_now(settle=True)
            except Exception as exc:  # a bug: counted and shown like any failed reload
                log.exception("prompt reload crashed; still serving generation %d", self.served.current.generation)
                self.served.fail([f"the reload crashed: {type(exc).__name__}: {exc}"])


def _identity(directories: tuple[Path, ...]) -> tuple[tuple[str, int, int] | None, ...]:
    """What each prompt path is now: its resolved target and inode, None if gone.
    Re-pointing a symlinked path (git-sync's `current -> rev2`) or recreating a
    directory changes it, and inotify watches would not notice either."""
    out = []
    for directory in directories:
        try:
            st = os.stat(directory)
            out.append((os.path.realpath(directory), st.st_ino, st.st_dev) if stat.S_ISDIR(st.st_mode) else None)
        except OSError:
            out.append(None)
    return tuple(out)


async def _watch_files(directories: list[Path], reloader: Reloader, stop: asyncio.Event) -> None:
    """Every change below the prompt directories asks for a rebuild, dot-files
    included: a ConfigMap's `..data` swap changes only dot-named entries."""
    async for _changes in watchfiles.awatch(
        *directories,
        watch_filter=None,
        step=STEP_MS,
        debounce=DEBOUNCE_MS,
        stop_event=stop,
        recursive=True,
    ):
        reloader.request_reload()


async def watch(directories: tuple[Path, ...], reloader: Reloader, stop: asyncio.Event) -> None:
    """Watch the files, and the prompt paths themselves: when a path is
    re-pointed, removed or recreated, rebuild and watch what it is now."""
    identity = _identity(directories)
    while not stop.is_set():
        present = [d for d, found in zip(directories, identity, strict=True) if found is not None]
        watcher_stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_files(present, reloader, watcher_stop)) if present else None
        try:
            # Catch up on what changed while the watcher was starting (it sees only
            # later changes): a rebuild of an unchanged set costs a stat per file.
            await asyncio.sleep(WATCH_SETTLE_S)
            reloader.request_reload()
            while not stop.is_set():
                await asyncio.sleep(PATH_POLL_S)
                now = _identity(directories)
                if now != identity:
                    identity = now
                    reloader.request_reload()
                    break
                if watcher is not None and watcher.done():
                    if not watcher.cancelled() and watcher.exception() is not None:
                        log.error("the file watcher stopped: %s; watching again", watcher.exception())
                    break
        finally:
            watcher_stop.set()
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)


async def reload_context(reloader: Reloader, directories: tuple[Path, ...], watch_files: bool) -> AsyncIterator[None]:
    """Run the reload task (and the watcher when `watch_files`) for the app's lifetime."""
    stop = asyncio.Event()
    reloader.start_builder()
    tasks = [asyncio.create_task(reloader.run(), name="promptd-reload")]
    if watch_files:
        tasks.append(asyncio.create_task(watch(directories, reloader, stop), name="promptd-watch"))
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        reloader.close()
