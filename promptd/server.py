"""Running promptd: one process on uvloop, or a supervisor of N workers.

With several workers the supervisor binds the port once and every worker
serves that one socket (inherited by file descriptor), so a second promptd on
the same port fails with "address already in use", as with one worker. A
worker exits when its supervisor dies, even by SIGKILL."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from promptd.app import create_app
from promptd.http.listener import LISTEN_BACKLOG, start_listening
from promptd.ops.metrics import MULTIPROC_ENV
from promptd.prompts.heap import fill_holes
from promptd.prompts.promptset import PromptSet
from promptd.settings import Settings

log = logging.getLogger("promptd")

WORKER_ENV = "PROMPTD_WORKER"
LISTEN_FD_ENV = "PROMPTD_LISTEN_FD"
PARENT_PID_ENV = "PROMPTD_PARENT_PID"
_RESTART_BACKOFF_MAX_S = 10.0
_PR_SET_PDEATHSIG = 1


def bind_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the supervisor dies; if it is already
    gone (it died before this ran), stop now."""
    parent = int(os.environ.get(PARENT_PID_ENV, "0"))
    if not parent:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent watch below still works
        pass
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


async def _watch_parent(stop: asyncio.Event) -> None:
    """Where PR_SET_PDEATHSIG is not available: notice a new parent."""
    parent = int(os.environ.get(PARENT_PID_ENV, "0"))
    while parent and not stop.is_set():
        if os.getppid() != parent:
            log.error("the supervisor (pid %d) is gone; stopping", parent)
            stop.set()
            return
        await asyncio.sleep(1.0)


def run_worker(settings: Settings, prompts: PromptSet) -> int:
    """Serve in this process until SIGTERM/SIGINT, then drain and exit 0."""
    _die_with_parent()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency everywhere but Windows
        return asyncio.run(_serve(settings, prompts))
    return uvloop.run(_serve(settings, prompts))


async def _serve(settings: Settings, prompts: PromptSet) -> int:
    app = create_app(settings, prompts)
    inherited = os.environ.get(LISTEN_FD_ENV)
    if inherited:
        sock = socket.socket(fileno=int(inherited))
        sock.setblocking(False)
    else:
        try:
            sock = bind_socket(settings.host, settings.port)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
            return 2
    listener = await start_listening(app, settings, sock)
    fill_holes()  # the process is set up: requests' objects go to whole free pools from now on
    host, port = sock.getsockname()[:2]
    state = app.state
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
    parent_watch = asyncio.create_task(_watch_parent(stop))
    await stop.wait()
    parent_watch.cancel()
    log.info("shutting down: draining in-flight requests", extra={"grace_s": settings.shutdown_grace_s})
    await listener.drain(settings.shutdown_grace_s)
    log.info("stopped")
    return 0


def supervise(settings: Settings, log_level: str) -> int:
    """Start `settings.workers` worker processes and keep them running.

    A worker that dies is restarted (with a growing back-off if it keeps dying);
    SIGTERM/SIGINT and SIGHUP are forwarded. Metrics of all workers are merged
    through prometheus-client's multiprocess directory."""
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        return 2
    sock.set_inheritable(True)
    log.info("supervisor listening on http://%s:%d", *sock.getsockname()[:2], extra={"workers": settings.workers})
    metrics_dir = tempfile.mkdtemp(prefix="promptd-metrics-")
    env = {
        **os.environ,
        WORKER_ENV: "1",
        MULTIPROC_ENV: metrics_dir,
        LISTEN_FD_ENV: str(sock.fileno()),
        PARENT_PID_ENV: str(os.getpid()),
    }
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
        process = subprocess.Popen(command, env={**env, WORKER_ENV: str(slot + 1)}, pass_fds=(sock.fileno(),))
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
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
