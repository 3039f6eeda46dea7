"""Work off the serving thread: bounded pools of worker processes.

Why processes, not threads: model building, the greedy warm start and verification are
Python and hold the GIL (measured: an 8,000-GPU instance spends over a minute there,
whatever its time limit), so in-process work would starve health checks, and work stuck in
Python cannot be stopped. A solve is stopped by a message (the solve's ``stop`` event:
CP-SAT stops within milliseconds) and, when that does not end it within ``kill_after_s``,
its process is killed and replaced: a cancelled or timed-out call always frees its slot.

Two pools of this class run in a server: the solvers (``Place``, ``PlaceStream``) and the
checkers (``Verify`` and ``Explain`` of large requests, which have no partial answer: at
their deadline the process is killed and the call answers DEADLINE_EXCEEDED). A large
request (``server.limits``) travels as its bytes and is read in the worker; after it the
worker is replaced, so that its memory goes back to the system.

Admission: at most ``workers`` jobs run and at most ``queue`` wait; one more is refused at
once (``Overloaded`` -> RESOURCE_EXHAUSTED). A queued job waits for a worker only until
its own deadline. ``drain`` (shutdown) refuses new and queued jobs (UNAVAILABLE) and stops
the running solves, which answer with their best verified plan.

Why a solve was stopped travels with the stop, so that the plan says it: at the deadline
(``stop_at``) the plan's stop reason is TIME_LIMIT; on shutdown it is INTERRUPTED; a
caller's cancel has no answer (nobody listens).

Protocol (two pipes per worker, pickled tuples):
  parent -> worker: ("job", id, kind, payload, request id) | ("stop", id, cause) | ("exit",)
      kind "solve": payload (Problem or the bytes of a pb.PlaceRequest, time limit s);
      kind "verify" / "explain": payload the bytes of a pb.VerifyRequest / pb.ExplainRequest;
      cause: "deadline", "cancel" or "shutdown"
  worker -> parent: ("ready",) | ("progress", id, Progress) | ("plan", id, bytes of pb.Plan, wall_s, gap)
                    | ("result", id, bytes of the response) | ("input_error", id, [FieldError], count)
                    | ("error", id, "Type: message")
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from placement.core.errors import InputError
from placement.exact.backends.base import Progress
from server.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidArgument,
    Overloaded,
    ShuttingDown,
    SolveFailed,
)

log = logging.getLogger(__name__)

MAX_SENT_ERRORS = 200  # input errors a worker sends back (the details list fewer; the count is kept)


# ----------------------------------------------------------------------------- worker side


def _parent_logging() -> tuple[int, bool] | None:
    """The level and format of the server's log set-up (``configure_logging``), for its workers."""
    from server.metrics import JsonFormatter, RequestIdFilter

    root = logging.getLogger()
    for h in root.handlers:
        if any(isinstance(f, RequestIdFilter) for f in h.filters):
            return root.level, isinstance(h.formatter, JsonFormatter)
    return None


def _solve_job(payload: Any, progress: Any, stop: threading.Event, cause: list[str]) -> tuple[Any, ...]:
    """Read (when given as bytes) and solve a request; the plan as bytes, its wall time and gap."""
    from placement import solve
    from placement.core.domain import Problem, StopReason
    from server.answers import problem_of
    from wire.convert import plan_to_proto
    from wire.gen.placement.v1 import placement_pb2 as pb

    source, limit_s = payload
    problem = source if isinstance(source, Problem) else problem_of(pb.PlaceRequest.FromString(source))
    problem = replace(problem, options=replace(problem.options, time_limit_s=limit_s))
    plan = solve(problem, progress=progress, stop=stop)
    if plan.info.stop_reason is StopReason.INTERRUPTED and cause[0] == "deadline":
        plan = replace(plan, info=replace(plan.info, stop_reason=StopReason.TIME_LIMIT))
    return plan_to_proto(plan).SerializeToString(), plan.info.wall_s, plan.info.gap


def _check_job(kind: str, payload: bytes) -> bytes:
    from server.answers import explain_response, verify_response
    from wire.gen.placement.v1 import placement_pb2 as pb

    if kind == "verify":
        return verify_response(pb.VerifyRequest.FromString(payload)).SerializeToString()
    return explain_response(pb.ExplainRequest.FromString(payload)).SerializeToString()


def _worker_main(
    jobs: Connection,
    events: Connection,
    nice: int,
    log_setup: tuple[int, bool] | None = None,
    solver: bool = True,
) -> None:
    """Entry point of a worker process: run jobs one at a time until told to exit."""
    import contextlib

    from server.metrics import configure_logging, request_id_var

    if log_setup is not None:  # the same log stream as the server, request ids included
        configure_logging(*log_setup)
    with contextlib.suppress(OSError):
        os.nice(nice)
    if solver:
        from placement.core.domain import Backend
        from placement.exact.backends import get_backend

        with contextlib.suppress(Exception):  # warm the default backend's imports
            get_backend(Backend.ORTOOLS).version()
    inbox: queue.Queue[tuple[int, str, Any, str] | None] = queue.Queue()
    stop = threading.Event()
    lock = threading.Lock()
    current = [-1]
    cause = [""]
    stops: dict[int, str] = {}  # a stop may arrive before its job starts
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            events.send(msg)

    def read() -> None:
        try:
            while True:
                msg = jobs.recv()
                if msg[0] == "job":
                    inbox.put((msg[1], msg[2], msg[3], msg[4]))
                elif msg[0] == "stop":
                    with lock:
                        stops[msg[1]] = msg[2]
                        if msg[1] == current[0]:
                            cause[0] = msg[2]
                            stop.set()
                else:
                    break
        except (EOFError, OSError):
            pass
        cause[0] = cause[0] or "shutdown"
        stop.set()
        inbox.put(None)

    threading.Thread(target=read, name="worker-inbox", daemon=True).start()
    send(("ready",))
    while True:
        item = inbox.get()
        if item is None:
            return
        job_id, kind, payload, request_id = item
        request_id_var.set(request_id)
        with lock:
            current[0] = job_id
            cause[0] = stops.pop(job_id, "")
            if cause[0]:
                stop.set()
            else:
                stop.clear()

        def progress(p: Progress, job_id: int = job_id) -> None:
            send(("progress", job_id, p))

        try:
            if kind == "solve":
                send(("plan", job_id, *_solve_job(payload, progress, stop, cause)))
            else:
                send(("result", job_id, _check_job(kind, payload)))
        except InvalidArgument as e:
            send(("input_error", job_id, list(e.errors[:MAX_SENT_ERRORS]), e.count))
        except InputError as e:
            send(("input_error", job_id, list(e.errors[:MAX_SENT_ERRORS]), len(e.errors)))
        except Exception as e:  # reported to the parent, which logs it and answers INTERNAL
            send(("error", job_id, f"{type(e).__name__}: {e}"))
        with lock:
            current[0] = -1
            stops.pop(job_id, None)


# ----------------------------------------------------------------------------- parent side


class CallState(Protocol):
    """What the pool needs to know of the call a job serves."""

    def cancelled(self) -> bool:
        """The caller no longer waits (it cancelled, or its deadline passed)."""
        ...

    def expired(self) -> bool:
        """Its deadline passed."""
        ...


@dataclass(frozen=True)
class Done:
    """The end of a solve: the plan's bytes, or ``None`` when no plan came before ``finish_by``."""

    plan_bytes: bytes | None
    why: str = ""  # when plan_bytes is None: "deadline", "cancelled", "queue" or "shutdown"
    wall_s: float = 0.0
    gap: float | None = None


class _Worker:
    """One worker process and its two pipes. ``kill`` may be called from several threads (the
    pool's close, a retiring or warming thread): the first call kills, joins and closes the
    pipes, later ones return at once (closing a pipe twice at the same moment could close a
    descriptor that another thread has just been given)."""

    def __init__(self, ctx: Any, nice: int, index: int, name: str, solver: bool) -> None:
        self._kill_lock = threading.Lock()
        self._killed = False
        self.jobs_parent, jobs_child = ctx.Pipe(duplex=False)[::-1]
        events_parent, self.events_child = ctx.Pipe(duplex=False)
        self.events = events_parent
        self.process: BaseProcess = ctx.Process(
            target=_worker_main,
            args=(jobs_child, self.events_child, nice, _parent_logging(), solver),
            name=f"fleetplace-{name}-{index}",
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
        with self._kill_lock:
            if self._killed:
                return
            self._killed = True
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        for c in (self.jobs_parent, self.events):
            c.close()


class SolvePool:
    """A fixed number of worker processes, a bounded queue, and stop/kill on cancel or deadline."""

    def __init__(
        self,
        workers: int = 2,
        queue_size: int = 4,
        nice: int = 5,
        kill_after_s: float = 0.5,
        solver: bool = True,
        name: str = "solver",
    ) -> None:
        self._ctx = mp.get_context("spawn")  # never fork a process that runs gRPC threads
        self._size = workers
        self._queue_size = queue_size
        self._nice = nice
        self._solver = solver
        self._name = name
        self.kill_after_s = kill_after_s
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._jobs: dict[int, _Worker] = {}  # running jobs
        self._running = 0
        self._waiting = 0
        self._closed = False
        self._draining = False
        self._drain_until = float("inf")
        self._job_ids = iter(range(1, 2**62))
        self._spawned = 0
        self._stop_lags: collections.deque[tuple[float, float]] = collections.deque(maxlen=32)
        for _ in range(workers):
            self._spawn()

    # ---- bookkeeping

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return self._waiting

    def stop_excess_s(self, window_s: float = 60.0) -> float:
        """How much longer than expected the recent stopped solves took from the stop to their
        plan, at most (0 when they kept to it): the load on the machine, measured."""
        since = time.monotonic() - window_s
        with self._cond:
            return max((x for t, x in self._stop_lags if t >= since), default=0.0)

    def _spawn(self) -> None:
        """Start a replacement worker in the background; it joins the idle list once ready."""
        self._spawned += 1
        w = _Worker(self._ctx, self._nice, self._spawned, self._name, self._solver)
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
                log.error("a %s process did not start; starting another", self._name)
                self._spawn()

        threading.Thread(target=warm, name=f"{self._name}-warmup", daemon=True).start()

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
                        done = w.events.recv()[0] in ("plan", "result", "input_error", "error")
                except (EOFError, OSError):
                    break
            if done and w.process.is_alive():
                with self._cond:
                    if not self._closed:
                        self._idle.append(w)
                        self._cond.notify_all()
                        return
            if graceful_s > 0:
                log.info(
                    "%s process %s did not stop within %.1f s: killed", self._name, w.process.pid, graceful_s
                )
            with self._cond:
                self._all.discard(w)
            w.kill()
            if not self._closed:
                self._spawn()

        threading.Thread(target=finish, name=f"{self._name}-retire", daemon=True).start()

    def _release(self, w: _Worker, recycle: bool = False) -> None:
        """``w`` answered: back to the idle list, or (``recycle``, after a large job) replaced by a
        fresh process so that the memory the job took goes back to the system."""
        with self._cond:
            if not self._closed and not recycle:
                self._idle.append(w)
                self._cond.notify_all()
                return
            self._all.discard(w)
        w.send(("exit",))

        def reap() -> None:
            w.process.join(timeout=5)
            w.kill()

        threading.Thread(target=reap, name=f"{self._name}-reap", daemon=True).start()
        if recycle and not self._closed:
            self._spawn()

    def _acquire(self, until: float, call: CallState) -> _Worker | None:
        """A worker, waiting for one at most until ``until`` (``None`` then, or when the caller left)."""
        with self._cond:
            if self._closed or self._draining:
                raise ShuttingDown("the server is shutting down")
            if self._running + self._waiting >= self._size + self._queue_size:
                raise Overloaded(
                    f"{self._running} {self._name} jobs running and {self._waiting} queued (limits "
                    f"{self._size} and {self._queue_size}); retry later"
                )
            self._waiting += 1
            try:
                while not self._idle:
                    left = until - time.monotonic()
                    if left <= 0 or call.cancelled() or self._closed or self._draining:
                        break
                    self._cond.wait(min(left, 0.05))
                if self._closed or self._draining:
                    raise ShuttingDown("the server is shutting down")
                worker = self._idle.pop() if self._idle and not call.cancelled() else None
            finally:
                self._waiting -= 1
            if worker is not None:
                self._running += 1
            return worker

    def _stop_lag(self, excess_s: float) -> None:
        with self._cond:
            self._stop_lags.append((time.monotonic(), max(0.0, excess_s)))

    def _done_running(self, job: int) -> None:
        with self._cond:
            self._running -= 1
            self._jobs.pop(job, None)
            self._cond.notify_all()

    # ---- the solve path

    def solve(
        self,
        payload: Any,
        stop_at: float,
        finish_by: float,
        call: CallState,
        recycle: bool = False,
        fit_limit: bool = True,
        min_run_s: float = 0.05,
        stop_grace_s: float = 0.0,
    ) -> Iterator[Progress | Done]:
        """Run a solve (``payload``: (Problem or request bytes, time limit s)) on a worker: yields
        progress, then one ``Done``.

        A queued solve starts only while at least ``min_run_s`` is left before ``stop_at``; with
        ``fit_limit`` its time limit shrinks to what is left then (a solve that waited 4 s in
        the queue must not start with the 2 s limit it was given on arrival). ``stop_grace_s``:
        how long a stopped solve is expected to take to its plan; what it takes beyond that is
        recorded (``stop_excess_s``).

        ``stop_at`` (monotonic): the worker is asked to stop and return its best verified plan
        (stop reason TIME_LIMIT); ``finish_by``: without a plan by then, ``Done(None, "deadline")``.
        The caller gone: the solve is stopped and ``Done(None, "cancelled")`` (or "deadline" when
        its deadline passed) comes at once. Raises ``Overloaded`` when the pool and its queue are
        full, ``ShuttingDown`` while draining, ``InvalidArgument`` for a request the worker rejects,
        ``SolveFailed`` when the worker failed. ``recycle``: replace the worker afterwards.
        """
        worker = self._acquire(min(stop_at - min_run_s, finish_by), call)
        if worker is None:
            yield Done(None, ("deadline" if call.expired() else "cancelled") if call.cancelled() else "queue")
            return
        if fit_limit:
            source, limit_s = payload
            payload = (source, max(min_run_s, min(limit_s, stop_at - time.monotonic())))
        job = next(self._job_ids)
        with self._cond:
            self._jobs[job] = worker
        try:
            yield from self._run(worker, job, payload, stop_at, finish_by, call, recycle, stop_grace_s)
        finally:
            self._done_running(job)

    def _stop_cause(self, call: CallState, now: float, stop_at: float) -> str:
        if self._draining:
            return "shutdown"
        if now >= stop_at or call.expired():
            return "deadline"
        return "cancel" if call.cancelled() else ""

    def _run(
        self,
        w: _Worker,
        job: int,
        payload: Any,
        stop_at: float,
        finish_by: float,
        call: CallState,
        recycle: bool,
        stop_grace_s: float,
    ) -> Iterator[Progress | Done]:
        from server.metrics import request_id_var

        if not w.send(("job", job, "solve", payload, request_id_var.get())):
            self._retire(w, 0)
            raise SolveFailed("the solver process is gone")
        stopped: float | None = None  # when the stop was sent
        while True:
            now = time.monotonic()
            end = min(finish_by, self._drain_until)
            if stopped is None:
                cause = self._stop_cause(call, now, stop_at)
                if cause:
                    stopped = now
                    w.send(("stop", job, cause))
            if call.cancelled():
                self._retire(w, self.kill_after_s)
                yield Done(None, "deadline" if call.expired() else "cancelled")
                return
            if now >= end:
                if stopped is not None:
                    self._stop_lag(now - stopped - stop_grace_s)
                self._retire(w, self.kill_after_s)
                yield Done(None, "deadline" if now >= finish_by else "shutdown")
                return
            try:
                if not w.events.poll(min(0.05, max(0.0, end - now))):
                    continue
                msg = w.events.recv()
            except (EOFError, OSError):
                self._retire(w, 0)
                raise SolveFailed("the solver process died") from None
            kind = msg[0]
            if kind == "progress":
                yield msg[2]
                continue
            self._release(w, recycle)
            if stopped is not None:
                self._stop_lag(time.monotonic() - stopped - stop_grace_s)
            if kind == "plan":
                yield Done(msg[2], "", msg[3], msg[4])
                return
            if kind == "input_error":
                raise InvalidArgument(msg[2], count=msg[3])
            raise SolveFailed(f"the solve failed: {msg[2]}")

    # ---- the check path

    def check(self, kind: str, payload: bytes, finish_by: float, call: CallState) -> bytes:
        """Run a ``verify`` or ``explain`` job on a worker: the response's bytes. The worker is
        replaced afterwards (the jobs here are the large ones); at ``finish_by`` it is killed
        (``DeadlineExceeded``)."""
        from server.metrics import request_id_var

        worker = self._acquire(finish_by, call)
        if worker is None:
            if call.cancelled() and not call.expired():
                raise Cancelled("cancelled by the caller")
            raise DeadlineExceeded(f"no {self._name} process became free within the deadline")
        job = next(self._job_ids)
        with self._cond:
            self._jobs[job] = worker
        try:
            if not worker.send(("job", job, kind, payload, request_id_var.get())):
                self._retire(worker, 0)
                raise SolveFailed(f"the {self._name} process is gone")
            t0 = time.monotonic()
            while True:
                now = time.monotonic()
                if call.cancelled() or now >= min(finish_by, self._drain_until):
                    self._retire(worker, 0)
                    if call.cancelled() and not call.expired():
                        raise Cancelled("cancelled by the caller")
                    if now < finish_by:
                        raise ShuttingDown("the server is shutting down")
                    raise DeadlineExceeded(f"{kind} did not finish within the deadline ({now - t0:.2f} s)")
                try:
                    if not worker.events.poll(min(0.05, max(0.0, finish_by - now))):
                        continue
                    msg = worker.events.recv()
                except (EOFError, OSError):
                    self._retire(worker, 0)
                    raise SolveFailed(f"the {self._name} process died") from None
                self._release(worker, recycle=True)
                if msg[0] == "result":
                    return bytes(msg[2])
                if msg[0] == "input_error":
                    raise InvalidArgument(msg[2], count=msg[3])
                raise SolveFailed(f"the {kind} failed: {msg[2]}")
        finally:
            self._done_running(job)

    # ---- shutdown

    def drain(self, until: float) -> None:
        """Shutdown: refuse new and queued jobs (``ShuttingDown``), stop the running solves (they
        answer with their best verified plan, stop reason INTERRUPTED) and give up on any job
        still running at ``until``."""
        with self._cond:
            self._draining = True
            self._drain_until = until
            running = list(self._jobs.items())
            self._cond.notify_all()
        for job, w in running:
            w.send(("stop", job, "shutdown"))

    def wait_idle(self, until: float) -> bool:
        """Wait until no job runs (or ``until``); whether none does."""
        with self._cond:
            while self._running:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

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
