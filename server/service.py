"""The ``placement.v1.PlacementService`` servicer: thin.

Each RPC first counts the request (``server.limits``: fleet limits, INVALID_ARGUMENT beyond
them, before any other work), then converts at the edge (``wire.convert``), checks the
input (every problem at once, raised as ``InvalidArgument``; ``server.errors`` maps it) and
calls the library. Solves go to the solver pool (``server.pool``), which bounds them and
frees a worker on cancel or deadline. A large request is read, checked and verified in a
worker process instead of the serving thread: a solve gets its bytes, ``Verify`` and
``Explain`` go to the checker pool, which kills the work at the deadline.

Time: with a deadline, the answer must leave before it. From the remaining time the
servicer keeps ``send_margin`` (encoding and sending the response: a part that grows with
the fleet, plus twice the longest recent time from an answer to the end of its call, measured by
``server.metrics``, which grows with the server's load) and ``stop_grace`` (after the stop
signal the solve assembles, verifies and encodes its best plan; grows with the fleet, plus
twice the most that recent stopped solves took beyond it, measured by the pool); the
rest, capped by the request's ``time_limit_s``, is the solve's time limit. At ``stop_at``
the worker is told to stop (the plan's stop reason says TIME_LIMIT); at ``finish_by``
without a plan the answer is a NO_SOLUTION plan (nothing placed, every workload unplaced
with the reason; for a large request, where building it would hold the serving thread,
DEADLINE_EXCEEDED) and the worker is stopped or killed in the background. A deadline that
leaves less than ``send_margin`` is DEADLINE_EXCEEDED at once. Without a deadline the
request's time limit applies. A deterministic request (``SolveOptions.deterministic``)
keeps its own time limit, from which its work is planned, whatever the deadline; the
deadline still stops it at ``stop_at``.

Status words: TIME_LIMIT when the clock (the time limit or the deadline) stopped a solve;
INTERRUPTED when the server's shutdown did; a caller who cancels gets no answer (CANCELLED).

Shutdown (``drain``): new calls get UNAVAILABLE ("the server is shutting down"); the solves
in flight are stopped and answer with their best verified plan.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from placement.core.domain import (
    StopReason,
)
from server.answers import explain_response, no_solution_plan, problem_of, verify_response
from server.config import ServerConfig
from server.errors import Cancelled, DeadlineExceeded, InvalidArgument, ShuttingDown
from server.limits import RequestSize, requested_time_limit_s, size_errors, size_of
from server.metrics import Metrics, answering
from server.plans import PlanStoreRpcs
from server.pool import Done, SolvePool
from wire import convert
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MIN_TIME_LIMIT_S = 0.05
# sending: a fixed part, plus the plan's encoding and transfer (its budget entry per GPU: about
# 8 us a GPU unloaded, doubled), plus what the server's load adds (measured on previous answers)
SEND_BASE_S = 0.05
SEND_S_PER_GPU = 1.5e-5
SEND_LAG_FACTOR = 2.0  # x the longest recent send time: the load may grow before this answer leaves
# after the stop: the solve assembles, verifies and encodes its best plan (measured 3 s at
# 160,000 GPUs: budgets 0.9 s, verification 1.4 s, encoding 0.6 s), the parent reads it
STOP_BASE_S = 0.1
STOP_S_PER_GPU = 3e-5


@dataclass(frozen=True)
class TimeBox:
    time_limit_s: float  # the solve's own time box
    stop_at: float  # monotonic: ask the worker to stop
    finish_by: float  # monotonic: answer with what we have


def margins_s(n_gpus: int, send_lag_s: float = 0.0, stop_excess_s: float = 0.0) -> tuple[float, float]:
    """(send_margin, stop_grace) for a fleet of ``n_gpus`` GPUs when answers have recently taken
    up to ``send_lag_s`` from the handler to the end of their call, and stopped solves up to
    ``stop_excess_s`` longer than their stop grace to their plan, in seconds."""
    return (
        SEND_BASE_S + SEND_S_PER_GPU * n_gpus + SEND_LAG_FACTOR * send_lag_s,
        STOP_BASE_S + STOP_S_PER_GPU * n_gpus + SEND_LAG_FACTOR * stop_excess_s,
    )


def time_box(
    n_gpus: int,
    requested_s: float,
    remaining_s: float | None,
    max_time_limit_s: float,
    send_lag_s: float = 0.0,
    stop_excess_s: float = 0.0,
) -> TimeBox:
    """The solve's time limit and the stop/answer times for a call with ``remaining_s`` left."""
    now = time.monotonic()
    send_margin, stop_grace = margins_s(n_gpus, send_lag_s, stop_excess_s)
    requested = min(requested_s, max_time_limit_s)
    if remaining_s is None:
        stop_at = now + requested
        return TimeBox(requested, stop_at, stop_at + stop_grace + send_margin)
    finish_by = now + remaining_s - send_margin
    stop_at = finish_by - stop_grace
    return TimeBox(max(MIN_TIME_LIMIT_S, min(requested, stop_at - now)), stop_at, finish_by)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def release_memory() -> None:
    """After a large request has gone: hand the heap's free pages back to the system (glibc
    keeps them otherwise)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class CallState:
    """A call as the pool sees it: cancelled (the caller left, or its deadline passed) and expired."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context
        self._event = threading.Event()
        context.add_callback(self._event.set)

    def cancelled(self) -> bool:
        return self._event.is_set() or not self._context.is_active()

    def expired(self) -> bool:
        remaining = self._context.time_remaining()
        return remaining is not None and remaining <= 0


class PlacementServicer(PlanStoreRpcs, pb_grpc.PlacementServiceServicer):
    def __init__(
        self, config: ServerConfig, pool: SolvePool, metrics: Metrics, checks: SolvePool | None = None
    ) -> None:
        self.config = config
        self.pool = pool
        self.checks = checks
        self.metrics = metrics
        self.draining = False
        self._inline = threading.BoundedSemaphore(config.inline_concurrency)

    @contextlib.contextmanager
    def _cpu(self, context: grpc.ServicerContext) -> Iterator[None]:
        """A slot for Python work in this process (reading, checking, verifying a small request):
        at most ``inline_concurrency`` at once, so that the threads that wait are blocked rather
        than runnable and the serving thread gets the interpreter soon (with 32 callers each doing
        Python work, calls waited their whole 0.3 s deadline before their handler ran). The wait
        ends a send margin before the deadline."""
        remaining = context.time_remaining()
        wait_s = None if remaining is None else remaining - margins_s(0, self.metrics.send_lag_s())[0]
        if (wait_s is not None and wait_s <= 0) or not self._inline.acquire(timeout=wait_s):
            raise DeadlineExceeded("the server had no free slot for this request within its deadline")
        try:
            yield
        finally:
            self._inline.release()

    def _admit(self) -> None:
        if self.draining:
            raise ShuttingDown("the server is shutting down")

    def _size(self, request: pb.PlaceRequest, prefix: str) -> RequestSize:
        size = size_of(request, self.config)
        errors = size_errors(size, self.config, prefix)
        if errors:
            raise InvalidArgument(errors)
        return size

    # ---------------------------------------------------------------- solving

    def _solve(
        self, request: pb.PlaceRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Progress | pb.Plan]:
        self._admit()
        size = self._size(request, "")
        remaining = context.time_remaining()
        lag_s = self.metrics.send_lag_s()
        send_margin, _ = margins_s(size.gpus, lag_s)
        if remaining is not None and remaining <= send_margin:
            raise DeadlineExceeded(
                f"the deadline leaves {remaining:.3f} s; answering for {size.gpus:,} GPUs needs "
                f"about {send_margin:.2f} s"
            )
        large = size.large(self.config)
        if large:
            context.add_callback(release_memory)  # once the call is over and its request gone
        problem = None
        if not large:
            with self._cpu(context):
                problem = problem_of(request)
        requested = requested_time_limit_s(request) if problem is None else problem.options.time_limit_s
        remaining = context.time_remaining()  # again: reading the request may have waited for a slot
        excess_s = self.pool.stop_excess_s()
        box = time_box(size.gpus, requested, remaining, self.config.max_time_limit_s, lag_s, excess_s)
        if remaining is not None and box.stop_at - time.monotonic() < MIN_TIME_LIMIT_S:  # say so now
            answering()
            why = (
                f"the deadline ({remaining:.3f} s) leaves no time to solve: a fleet of {size.gpus:,} GPUs "
                f"needs about {box.finish_by - box.stop_at + send_margin + MIN_TIME_LIMIT_S:.2f} s"
            )
            log.info("solve: %s", why)
            if problem is None:
                raise DeadlineExceeded(why)
            # no slot wait (``_cpu``): a small fleet's empty plan takes milliseconds and must go now
            yield convert.plan_to_proto(no_solution_plan(problem, why, StopReason.TIME_LIMIT))
            return
        limit_s = box.time_limit_s
        if request.options.deterministic:  # the work is planned from the request's own limit, so that
            # the deadline (how long this caller waits) cannot change the plan; it still stops the solve
            limit_s = min(requested, self.config.max_time_limit_s)
        payload = (problem if problem is not None else request.SerializeToString(), limit_s)
        call = CallState(context)
        t0 = time.monotonic()
        log.info(
            "solve: %d nodes, %d GPUs, %d workloads%s, time limit %.2f s, answer within %.2f s",
            size.nodes,
            size.gpus,
            size.workloads,
            " (read in the solver process)" if large else "",
            box.time_limit_s,
            box.finish_by - t0,
        )
        fit = not request.options.deterministic  # (deterministic: the limit plans the work; the stop ends it)
        for event in self.pool.solve(
            payload,
            box.stop_at,
            box.finish_by,
            call,
            recycle=large,
            fit_limit=fit,
            min_run_s=MIN_TIME_LIMIT_S,
            stop_grace_s=margins_s(size.gpus)[1],
        ):
            if not isinstance(event, Done):
                yield convert.progress_to_proto(event)
                continue
            answering()
            if event.plan_bytes is not None:
                self.metrics.solve_seconds.observe(event.wall_s)
                if event.gap is not None:
                    self.metrics.gap.observe(event.gap)
                yield pb.Plan.FromString(event.plan_bytes)
                return
            waited = time.monotonic() - t0
            if event.why == "cancelled":
                raise Cancelled(f"cancelled by the caller after {waited:.2f} s")
            if event.why == "deadline" and call.expired():
                raise DeadlineExceeded(f"the deadline passed after {waited:.2f} s, before an answer")
            if event.why == "shutdown":
                raise ShuttingDown("the server shut down before the solve answered")
            why = (
                f"no solver process was free within the deadline ({self.pool.running} solves running)"
                if event.why == "queue"
                else f"no verified plan was found within the deadline ({box.finish_by - t0:.2f} s)"
            )
            log.info("solve: %s", why)
            if problem is None:  # a large fleet: its empty plan is seconds of work in this process
                raise DeadlineExceeded(why)
            # no slot wait (``_cpu``): a small fleet's empty plan takes milliseconds and must go now
            yield convert.plan_to_proto(no_solution_plan(problem, why, StopReason.TIME_LIMIT))
            return

    def Place(self, request: pb.PlaceRequest, context: grpc.ServicerContext) -> pb.PlaceResponse:
        for item in self._solve(request, context):
            if isinstance(item, pb.Plan):
                return pb.PlaceResponse(plan=item)
        raise Cancelled("no plan")  # not reached: _solve ends with a plan or raises

    def PlaceStream(self, request: pb.PlaceRequest, context: grpc.ServicerContext) -> Iterator[pb.PlaceEvent]:
        for item in self._solve(request, context):
            if isinstance(item, pb.Plan):
                yield pb.PlaceEvent(plan=item)
            else:
                yield pb.PlaceEvent(progress=item)

    # ---------------------------------------------------------------- checking

    def _large_check(
        self, kind: str, message: pb.VerifyRequest | pb.ExplainRequest, context: grpc.ServicerContext
    ) -> bytes | None:
        """The response bytes of a large Verify/Explain, run in a checker process within the
        deadline; ``None`` for a small one (answered here)."""
        self._admit()
        size = self._size(message.request, "request.")
        if self.checks is None or not (
            size.large(self.config) or message.ByteSize() > self.config.inline_max_bytes
        ):
            return None
        context.add_callback(release_memory)  # once the call is over and its request gone
        remaining = context.time_remaining()
        send_margin, _ = margins_s(0, self.metrics.send_lag_s())  # the answer is small
        budget = self.config.max_time_limit_s if remaining is None else remaining - send_margin
        if budget <= 0:
            raise DeadlineExceeded(
                f"the deadline leaves {remaining:.3f} s; answering needs about {send_margin:.2f} s"
            )
        log.info(
            "%s: %d nodes, %d GPUs, in a checker process within %.2f s", kind, size.nodes, size.gpus, budget
        )
        return self.checks.check(
            kind, message.SerializeToString(), time.monotonic() + budget, CallState(context)
        )

    def Verify(self, request: pb.VerifyRequest, context: grpc.ServicerContext) -> pb.VerifyResponse:
        data = self._large_check("verify", request, context)
        if data is not None:
            return pb.VerifyResponse.FromString(data)
        with self._cpu(context):
            return verify_response(request)

    def Explain(self, request: pb.ExplainRequest, context: grpc.ServicerContext) -> pb.ExplainResponse:
        data = self._large_check("explain", request, context)
        if data is not None:
            return pb.ExplainResponse.FromString(data)
        with self._cpu(context):
            return explain_response(request)
