"""How long from a prompt file's write finishing to promptd serving it.

    python -m benchmarks.reload_latency [--edits 50]

Starts promptd (watch = true) on a temporary config, edits one prompt file
`--edits` times and polls the render endpoint until the new text is served.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks import workload
from benchmarks.__main__ import Server, free_port, promptd_args

PROMPT = '[[versions]]\nversion = 1\nmodel = "gpt-4o-mini"\nmessages = [{ role = "system", content = "edit %d" }]\n'


async def run(edits: int) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix="promptd-reload-"))
    config = workload.write_config(tmp, 9, watch=True)
    path = config / "prompts" / "edited.toml"
    path.write_text(PROMPT % -1)
    port = free_port()
    server = Server("promptd", promptd_args(config, port), port, tmp / "promptd.log")
    delays: list[float] = []
    try:
        await server.wait_ready()
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as session:
            for edit in range(edits):
                path.write_text(PROMPT % edit)
                written = time.perf_counter()
                expected = f"edit {edit}"
                while True:
                    async with session.post(server.url + "/v1/prompts/edited/render", json={}) as response:
                        body = await response.json()
                    if body["body"]["messages"][0]["content"] == expected:
                        delays.append(time.perf_counter() - written)
                        break
                    if time.perf_counter() - written > 5:
                        raise SystemExit(f"edit {edit} not served after 5 s")
                    await asyncio.sleep(0.002)
                await asyncio.sleep(0.05)
    finally:
        server.stop()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=50)
    args = parser.parse_args()
    delays = asyncio.run(run(args.edits))
    ms = sorted(d * 1000 for d in delays)
    print(
        f"{len(ms)} edits: median {statistics.median(ms):.0f} ms, p90 {ms[int(0.9 * len(ms)) - 1]:.0f} ms, max {ms[-1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
