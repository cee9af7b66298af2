"""The served prompt set: the snapshot handlers read, and its reload status.

`current` is replaced, never mutated: a handler reads it once per request and
uses that snapshot throughout, so it sees the old set or the new one, never a
mix. Only `reload.py` calls `apply` and `fail`.
"""

from __future__ import annotations

import gc
import logging
import time

from promptd.ops.metrics import Metrics
from promptd.prompts.lock import changed_in_place
from promptd.prompts.promptset import PromptSet

log = logging.getLogger("promptd.reload")


class ServedPrompts:
    def __init__(self, initial: PromptSet, metrics: Metrics, warn_in_place: bool = True) -> None:
        self.metrics = metrics
        self.warn_in_place = warn_in_place  # without a lock, an in-place version change is a warning
        self.current = initial if initial.generation else initial.with_generation(1)
        gc.freeze()  # the served set is long-lived: keep it out of every future collection
        self.last_reload_at = self.current.loaded_at
        self.last_reload_error: list[str] | None = None
        metrics.generation.set(self.current.generation)
        metrics.prompts_loaded.set(len(self.current.prompts))

    def apply(self, new: PromptSet) -> PromptSet | None:
        """Serve `new` with the next generation number; returns the retired set,
        or None when `new` equals what is served (no new generation)."""
        self.last_reload_at = time.time()
        self.last_reload_error = None
        self.metrics.reloads.labels("success").inc()
        if new.hash == self.current.hash:
            return None
        retired = self.current
        if self.warn_in_place:
            for warning in changed_in_place(retired.prompts, new.prompts):
                log.warning(warning)
        self.current = new.with_generation(retired.generation + 1)
        gc.freeze()
        self.metrics.generation.set(self.current.generation)
        self.metrics.prompts_loaded.set(len(self.current.prompts))
        return retired

    def fail(self, problems: list[str]) -> None:
        """A reload that was not applied: the last good set keeps serving."""
        self.last_reload_at = time.time()
        self.last_reload_error = problems
        self.metrics.reloads.labels("failure").inc()
        log.error(
            "prompt reload failed; still serving generation %d",
            self.current.generation,
            extra={"problems": problems, "generation": self.current.generation},
        )
