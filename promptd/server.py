"""Running promptd: one process on uvloop, or a supervisor of N workers that
share the port with SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from aiohttp import web

from promptd.app import create_app
from promptd.ops.metrics import MULTIPROC_ENV
from promptd.prompts.promptset import PromptSet
from promptd.settings import Settings
from promptd.state import APP_STATE

log = logging.getLogger("promptd")

WORKER_ENV = "PROMPTD_WORKER"
_RESTART_BACKOFF_MAX_S = 10.0


def bind_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_worker(settings: Settings, prompts: PromptSet) -> int:
    """Serve in this process until SIGTERM/SIGINT, then drain and exit 0."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return asyncio.run(_serve(settings, prompts))
    return uvloop.run(_serve(settings, prompts))


async def _serve(settings: Settings, prompts: PromptSet) -> int:
    app = create_app(settings, prompts)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        shutdown_timeout=settings.shutdown_grace_s,
        access_log=None,
        handle_signals=False,
    )
    await runner.setup()
    reuse_port = bool(os.environ.get(WORKER_ENV))
    try:
        sock = bind_socket(settings.host, settings.port, reuse_port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        await runner.cleanup()
        return 2
    site = web.SockSite(runner, sock)
    await site.start()
    host, port = sock.getsockname()[:2]
    state = app[APP_STATE]
    log.info(
        "promptd listening on http://%s:%d",
        host,
        port,
        extra={
            "host": host,
            "port": port,
            "pid": os.getpid(),
            "prompts": len(state.prompts.current.prompts),
            "generation": state.prompts.current.generation,
            "config": str(settings.config_path),
        },
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, state.reloader.request_reload)
    await stop.wait()
    log.info("shutting down: draining in-flight requests", extra={"grace_s": settings.shutdown_grace_s})
    await runner.cleanup()
    log.info("stopped")
    return 0


def supervise(settings: Settings, log_level: str) -> int:
    """Start `settings.workers` worker processes and keep them running.

    A worker that dies is restarted (with a growing back-off if it keeps dying);
    SIGTERM/SIGINT and SIGHUP are forwarded. Metrics of all workers are merged
    through prometheus-client's multiprocess directory."""
    if settings.port == 0:
        log.error("--workers > 1 needs a fixed port, not 0")
        return 2
    metrics_dir = tempfile.mkdtemp(prefix="promptd-metrics-")
    env = {**os.environ, WORKER_ENV: "1", MULTIPROC_ENV: metrics_dir}
    command = [
        sys.executable,
        "-m",
        "promptd",
        "serve",
        str(settings.config_path),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        "1",
        "--log-level",
        log_level,
    ]
    workers: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    backoff = [0.0] * settings.workers
    stopping = False

    def start(slot: int) -> None:
        process = subprocess.Popen(command, env={**env, WORKER_ENV: str(slot + 1)})
        workers[slot] = (process, time.monotonic())
        log.info("worker %d started", slot + 1, extra={"worker": slot + 1, "pid": process.pid})

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for process, _ in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    from prometheus_client import multiprocess

    try:
        for slot in range(settings.workers):
            start(slot)
        while not stopping:
            time.sleep(0.1)
            for slot, (process, started) in list(workers.items()):
                code = process.poll()
                if code is None or stopping:
                    continue
                multiprocess.mark_process_dead(process.pid, metrics_dir)
                lived = time.monotonic() - started
                backoff[slot] = 0.0 if lived > 30 else min(_RESTART_BACKOFF_MAX_S, backoff[slot] * 2 or 0.25)
                log.error(
                    "worker %d (pid %d) exited with %s after %.1f s; restarting in %.2f s",
                    slot + 1,
                    process.pid,
                    code,
                    lived,
                    backoff[slot],
                    extra={"worker": slot + 1, "pid": process.pid, "exit_code": code},
                )
                time.sleep(backoff[slot])
                if not stopping:
                    start(slot)
        deadline = time.monotonic() + settings.shutdown_grace_s + 5
        for process, _ in workers.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
        log.info("all workers stopped")
        return 0
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
