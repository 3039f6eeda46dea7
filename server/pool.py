"""Solves run in a bounded pool of worker processes, inside the solve path.

Why processes, not threads: model building, the greedy warm start and verification are
Python and hold the GIL (measured: an 8,000-GPU instance spends over a minute there,
whatever its time limit), so in-process solves would starve health checks, and a solve
stuck in Python cannot be stopped. A worker process is stopped by a message (the solve's
``stop`` event: CP-SAT stops within milliseconds) and, when that does not end it within
``kill_after_s``, killed and replaced: a cancelled or timed-out call always frees its slot.

Admission: at most ``workers`` solves run and at most ``queue`` wait; one more is
refused at once (``Overloaded`` -> RESOURCE_EXHAUSTED). A queued solve waits for a
worker only until its own deadline.

Protocol (two pipes per worker, pickled tuples):
  parent -> worker: ("job", id, Problem, request id) | ("stop", id) | ("exit",)
  worker -> parent: ("ready",) | ("progress", id, Progress) | ("plan", id, bytes of pb.Plan, wall_s, gap)
                    | ("input_error", id, [FieldError]) | ("error", id, "Type: message")
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from placement.backends.base import Progress
from placement.domain import Problem
from placement.errors import InputError
from server.errors import Overloaded, ShuttingDown, SolveFailed

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- worker side


def _parent_logging() -> tuple[int, bool] | None:
    """The level and format of the server's log set-up (``configure_logging``), for its workers."""
    from server.metrics import JsonFormatter, RequestIdFilter

    root = logging.getLogger()
    for h in root.handlers:
        if any(isinstance(f, RequestIdFilter) for f in h.filters):
            return root.level, isinstance(h.formatter, JsonFormatter)
    return None


def _worker_main(
    jobs: Connection, events: Connection, nice: int, log_setup: tuple[int, bool] | None = None
) -> None:
    """Entry point of a worker process: solve jobs one at a time until told to exit."""
    import contextlib

    from server.metrics import configure_logging, request_id_var

    if log_setup is not None:  # the same log stream as the server, request ids included
        configure_logging(*log_setup)
    with contextlib.suppress(OSError):
        os.nice(nice)
    from placement import solve
    from placement.backends import get_backend
    from placement.domain import Backend
    from server.convert import plan_to_proto

    with contextlib.suppress(Exception):  # warm the default backend's imports
        get_backend(Backend.ORTOOLS).version()
    inbox: queue.Queue[tuple[int, Problem, str] | None] = queue.Queue()
    stop = threading.Event()
    current = [-1]
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            events.send(msg)

    def read() -> None:
        try:
            while True:
                msg = jobs.recv()
                if msg[0] == "job":
                    inbox.put((msg[1], msg[2], msg[3]))
                elif msg[0] == "stop":
                    if msg[1] == current[0]:
                        stop.set()
                else:
                    break
        except (EOFError, OSError):
            pass
        stop.set()
        inbox.put(None)

    threading.Thread(target=read, name="worker-inbox", daemon=True).start()
    send(("ready",))
    while True:
        item = inbox.get()
        if item is None:
            return
        job_id, problem, request_id = item
        request_id_var.set(request_id)
        stop.clear()
        current[0] = job_id

        def progress(p: Progress, job_id: int = job_id) -> None:
            send(("progress", job_id, p))

        try:
            plan = solve(problem, progress=progress, stop=stop)
            send(("plan", job_id, plan_to_proto(plan).SerializeToString(), plan.info.wall_s, plan.info.gap))
        except InputError as e:
            send(("input_error", job_id, list(e.errors)))
        except Exception as e:  # reported to the parent, which logs it and answers INTERNAL
            send(("error", job_id, f"{type(e).__name__}: {e}"))
        current[0] = -1


# ----------------------------------------------------------------------------- parent side


@dataclass(frozen=True)
class Done:
    """The end of a solve: the plan's bytes, or ``None`` when no plan came before ``finish_by``."""

    plan_bytes: bytes | None
    why: str = ""  # when plan_bytes is None: "deadline", "cancelled" or "queue"
    wall_s: float = 0.0
    gap: float | None = None


class _Worker:
    def __init__(self, ctx: Any, nice: int, index: int) -> None:
        self.jobs_parent, jobs_child = ctx.Pipe(duplex=False)[::-1]
        events_parent, self.events_child = ctx.Pipe(duplex=False)
        self.events = events_parent
        self.process: BaseProcess = ctx.Process(
            target=_worker_main,
            args=(jobs_child, self.events_child, nice, _parent_logging()),
            name=f"fleetplace-solver-{index}",
            daemon=True,
        )
        self.process.start()
        jobs_child.close()
        self.events_child.close()
        self.ready = False

    def wait_ready(self, timeout_s: float) -> bool:
        if not self.ready and self.events.poll(timeout_s):
            try:
                self.ready = self.events.recv() == ("ready",)
            except (EOFError, OSError):
                return False
        return self.ready

    def send(self, msg: tuple[Any, ...]) -> bool:
        try:
            self.jobs_parent.send(msg)
            return True
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        for c in (self.jobs_parent, self.events):
            c.close()


class SolvePool:
    """A fixed number of solver processes, a bounded queue, and stop/kill on cancel or deadline."""

    def __init__(
        self, workers: int = 2, queue_size: int = 4, nice: int = 5, kill_after_s: float = 0.5
    ) -> None:
        self._ctx = mp.get_context("spawn")  # never fork a process that runs gRPC threads
        self._size = workers
        self._queue_size = queue_size
        self._nice = nice
        self.kill_after_s = kill_after_s
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._running = 0
        self._waiting = 0
        self._closed = False
        self._job_ids = iter(range(1, 2**62))
        self._spawned = 0
        for _ in range(workers):
            self._spawn()

    # ---- bookkeeping

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return self._waiting

    def _spawn(self) -> None:
        """Start a replacement worker in the background; it joins the idle list once ready."""
        self._spawned += 1
        w = _Worker(self._ctx, self._nice, self._spawned)
        with self._cond:
            self._all.add(w)

        def warm() -> None:
            ok = w.wait_ready(120)
            with self._cond:
                if ok and not self._closed:
                    self._idle.append(w)
                    self._cond.notify_all()
                    return
                self._all.discard(w)
            w.kill()
            if not ok and not self._closed:
                log.error("a solver process did not start; starting another")
                self._spawn()

        threading.Thread(target=warm, name="solver-warmup", daemon=True).start()

    def wait_ready(self, timeout_s: float = 60) -> bool:
        """Block until every worker is ready (for tests and start-up)."""
        end = time.monotonic() + timeout_s
        with self._cond:
            while len(self._idle) + self._running < self._size:
                left = end - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._cond.wait(left)
        return True

    def _retire(self, w: _Worker, graceful_s: float) -> None:
        """Take ``w`` out of service: wait up to ``graceful_s`` for its answer, else kill it and replace it."""

        def finish() -> None:
            end = time.monotonic() + graceful_s
            done = False
            while not done and time.monotonic() < end:
                try:
                    if w.events.poll(max(0.0, end - time.monotonic())):
                        done = w.events.recv()[0] in ("plan", "input_error", "error")
                except (EOFError, OSError):
                    break
            if done and w.process.is_alive():
                with self._cond:
                    if not self._closed:
                        self._idle.append(w)
                        self._cond.notify_all()
                        return
            log.info("solver process %s did not stop within %.1f s: killed", w.process.pid, graceful_s)
            with self._cond:
                self._all.discard(w)
            w.kill()
            if not self._closed:
                self._spawn()

        threading.Thread(target=finish, name="solver-retire", daemon=True).start()

    # ---- the solve path

    def solve(
        self,
        problem: Problem,
        stop_at: float,
        finish_by: float,
        cancelled: threading.Event,
    ) -> Iterator[Progress | Done]:
        """Run ``problem`` on a worker: yields progress, then one ``Done``.

        ``stop_at`` (monotonic): the worker is asked to stop and return its best verified plan;
        ``finish_by``: without a plan by then, ``Done(None, "deadline")``. ``cancelled`` set:
        the solve is stopped and ``Done(None, "cancelled")`` comes at once.
        Raises ``Overloaded`` when the pool and its queue are full, ``InputError`` for a problem
        the library rejects, ``SolveFailed`` when the worker failed.
        """
        with self._cond:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            if self._running + self._waiting >= self._size + self._queue_size:
                raise Overloaded(
                    f"{self._running} solves running and {self._waiting} queued (limits {self._size} and "
                    f"{self._queue_size}); retry later"
                )
            self._waiting += 1
            try:
                while not self._idle:
                    left = min(stop_at, finish_by) - time.monotonic()
                    if left <= 0 or cancelled.is_set() or self._closed:
                        break
                    self._cond.wait(min(left, 0.05))
                worker = self._idle.pop() if self._idle else None
            finally:
                self._waiting -= 1
            if worker is not None:
                self._running += 1
            closed = self._closed
        if worker is None:
            if closed:
                raise ShuttingDown("the server is shutting down")
            yield Done(None, "cancelled" if cancelled.is_set() else "queue")
            return
        try:
            yield from self._run(worker, problem, stop_at, finish_by, cancelled)
        finally:
            with self._cond:
                self._running -= 1

    def _run(
        self, w: _Worker, problem: Problem, stop_at: float, finish_by: float, cancelled: threading.Event
    ) -> Iterator[Progress | Done]:
        job = next(self._job_ids)
        from server.metrics import request_id_var

        if not w.send(("job", job, problem, request_id_var.get())):
            self._retire(w, 0)
            raise SolveFailed("the solver process is gone")
        stopped = False
        while True:
            now = time.monotonic()
            if not stopped and (cancelled.is_set() or now >= stop_at):
                stopped = True
                w.send(("stop", job))
            if cancelled.is_set():
                self._retire(w, self.kill_after_s)
                yield Done(None, "cancelled")
                return
            if now >= finish_by:
                self._retire(w, self.kill_after_s)
                yield Done(None, "deadline")
                return
            try:
                if not w.events.poll(min(0.05, max(0.0, finish_by - now))):
                    continue
                msg = w.events.recv()
            except (EOFError, OSError):
                self._retire(w, 0)
                raise SolveFailed("the solver process died") from None
            kind = msg[0]
            if kind == "progress":
                yield msg[2]
                continue
            self._release(w)
            if kind == "plan":
                yield Done(msg[2], "", msg[3], msg[4])
                return
            if kind == "input_error":
                raise InputError(msg[2])
            raise SolveFailed(f"the solve failed: {msg[2]}")

    def _release(self, w: _Worker) -> None:
        with self._cond:
            if self._closed:
                self._all.discard(w)
                w.send(("exit",))
                return
            self._idle.append(w)
            self._cond.notify_all()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop every worker: ask them to exit, kill those that do not within ``timeout_s``."""
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for w in workers:
            w.send(("exit",))
        end = time.monotonic() + timeout_s
        for w in workers:
            w.process.join(max(0.0, end - time.monotonic()))
            w.kill()
