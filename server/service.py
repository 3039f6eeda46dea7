"""The ``placement.v1.PlacementService`` servicer: thin.

Each RPC converts at the edge (``server.convert``), checks the input (every problem at
once, raised as ``InvalidArgument``; ``server.errors`` maps it), and calls the library.
Solves go to the worker pool (``server.pool``), which bounds them and frees a worker on
cancel or deadline.

Time: with a deadline, the answer must leave before it. From the remaining time the
servicer keeps ``send_margin`` (building and sending the response) and ``stop_grace``
(after the stop signal the solve assembles, verifies and encodes its best plan); the
rest, capped by the request's ``time_limit_s``, is the solve's time limit. At
``stop_at`` the worker is told to stop; at ``finish_by`` without a plan the answer is a
NO_SOLUTION plan (nothing placed, every workload unplaced with the reason) and the worker
is stopped or killed in the background. Both margins grow with the fleet (encoding a
plan is linear in its GPUs). Without a deadline the request's time limit applies. A
deterministic request (``SolveOptions.deterministic``) keeps its own time limit, from which
its work is planned, whatever the deadline; the deadline still stops it at ``stop_at``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import grpc

from placement.budgets import compute_budgets
from placement.domain import (
    Plan,
    Problem,
    Reason,
    SolveInfo,
    SolveStatus,
    StopReason,
    UnplacedWorkload,
)
from placement.errors import FieldError, InputError
from placement.explain import explain
from placement.objective import evaluate
from placement.validate import validate_request
from placement.verify import verify
from server import convert
from server.config import ServerConfig
from server.errors import InvalidArgument
from server.gen.placement.v1 import placement_pb2 as pb
from server.gen.placement.v1 import placement_pb2_grpc as pb_grpc
from server.metrics import Metrics
from server.pool import Done, SolvePool

log = logging.getLogger(__name__)

MIN_TIME_LIMIT_S = 0.05


@dataclass(frozen=True)
class TimeBox:
    time_limit_s: float  # the solve's own time box
    stop_at: float  # monotonic: ask the worker to stop
    finish_by: float  # monotonic: answer with what we have


def margins_s(n_gpus: int) -> tuple[float, float]:
    """(send_margin, stop_grace) for a fleet of ``n_gpus`` GPUs, in seconds."""
    return 0.1 + 3e-5 * n_gpus, 0.25 + 1e-4 * n_gpus


def time_box(problem: Problem, remaining_s: float | None, max_time_limit_s: float) -> TimeBox:
    """The solve's time limit and the stop/answer times for a call with ``remaining_s`` left."""
    now = time.monotonic()
    n_gpus = sum(n.gpu_count for n in problem.fleet.nodes)
    send_margin, stop_grace = margins_s(n_gpus)
    requested = min(problem.options.time_limit_s, max_time_limit_s)
    if remaining_s is None:
        stop_at = now + requested
        return TimeBox(requested, stop_at, stop_at + stop_grace + send_margin)
    finish_by = now + remaining_s - send_margin
    stop_at = finish_by - stop_grace
    return TimeBox(max(MIN_TIME_LIMIT_S, min(requested, stop_at - now)), stop_at, finish_by)


def _prefixed(errors: list[FieldError] | tuple[FieldError, ...], prefix: str) -> list[FieldError]:
    return [FieldError(prefix + e.path, e.message) for e in errors]


def problem_of(request: pb.PlaceRequest, prefix: str = "") -> Problem:
    """The valid domain instance of a request, or ``InvalidArgument`` with every problem (paths under ``prefix``)."""
    problem, errors = convert.problem_and_errors_from_request(request)
    errors += validate_request(problem)
    if errors:
        raise InvalidArgument(_prefixed(errors, prefix))
    return problem


def no_solution_plan(problem: Problem, why: str, stop_reason: StopReason) -> Plan:
    """A plan that places nothing, every workload unplaced with ``why``: the answer when no plan came in time."""
    reason = Reason("no_solution", why, 0)
    return Plan(
        placements=(),
        budgets=compute_budgets(problem, ()),
        unplaced=tuple(UnplacedWorkload(w.name, (reason,)) for w in problem.workloads),
        objective=evaluate(problem, ()),
        info=SolveInfo(
            status=SolveStatus.NO_SOLUTION,
            stop_reason=stop_reason,
            backend=problem.options.backend.value,
            seed=problem.options.seed,
        ),
    )


class PlacementServicer(pb_grpc.PlacementServiceServicer):
    def __init__(self, config: ServerConfig, pool: SolvePool, metrics: Metrics) -> None:
        self.config = config
        self.pool = pool
        self.metrics = metrics

    # ---------------------------------------------------------------- solving

    def _solve(
        self, request: pb.PlaceRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Progress | pb.Plan]:
        problem = problem_of(request)
        box = time_box(problem, context.time_remaining(), self.config.max_time_limit_s)
        limit_s = box.time_limit_s
        if problem.options.deterministic:  # the work is planned from the request's own limit, so that
            # the deadline (how long this caller waits) cannot change the plan; it still stops the solve
            limit_s = min(problem.options.time_limit_s, self.config.max_time_limit_s)
        solve_problem = replace(problem, options=replace(problem.options, time_limit_s=limit_s))
        cancelled = threading.Event()
        context.add_callback(cancelled.set)
        t0 = time.monotonic()
        log.info(
            "solve: %d nodes, %d workloads, time limit %.2f s, answer within %.2f s",
            len(problem.fleet.nodes),
            len(problem.workloads),
            box.time_limit_s,
            box.finish_by - t0,
        )
        for event in self.pool.solve(solve_problem, box.stop_at, box.finish_by, _Cancel(cancelled, context)):
            if not isinstance(event, Done):
                yield convert.progress_to_proto(event)
                continue
            if event.plan_bytes is not None:
                self.metrics.solve_seconds.observe(event.wall_s)
                if event.gap is not None:
                    self.metrics.gap.observe(event.gap)
                yield pb.Plan.FromString(event.plan_bytes)
                return
            if event.why == "cancelled":
                log.info("solve cancelled by the caller after %.2f s", time.monotonic() - t0)
                return
            why = (
                f"no solver process was free within the deadline ({self.pool.running} solves running)"
                if event.why == "queue"
                else f"no verified plan was found within the deadline ({box.finish_by - t0:.2f} s)"
            )
            log.info("solve: %s", why)
            yield convert.plan_to_proto(no_solution_plan(problem, why, StopReason.TIME_LIMIT))
            return

    def Place(self, request: pb.PlaceRequest, context: grpc.ServicerContext) -> pb.PlaceResponse:
        for item in self._solve(request, context):
            if isinstance(item, pb.Plan):
                return pb.PlaceResponse(plan=item)
        return pb.PlaceResponse()  # cancelled: nobody is listening

    def PlaceStream(self, request: pb.PlaceRequest, context: grpc.ServicerContext) -> Iterator[pb.PlaceEvent]:
        for item in self._solve(request, context):
            if isinstance(item, pb.Plan):
                yield pb.PlaceEvent(plan=item)
            else:
                yield pb.PlaceEvent(progress=item)

    # ---------------------------------------------------------------- checking

    def Verify(self, request: pb.VerifyRequest, context: grpc.ServicerContext) -> pb.VerifyResponse:
        problem = problem_of(request.request, "request.")
        try:
            plan = convert.plan_from_proto(request.plan)
        except InputError as e:
            raise InvalidArgument(_prefixed(e.errors, "plan.")) from None
        violations = verify(problem, plan)
        return pb.VerifyResponse(
            violations=[convert.violation_to_proto(v) for v in violations], valid=not violations
        )

    def Explain(self, request: pb.ExplainRequest, context: grpc.ServicerContext) -> pb.ExplainResponse:
        problem = problem_of(request.request, "request.")
        errors: list[FieldError] = []
        names = {w.name for w in problem.workloads}
        if not request.workload:
            errors.append(FieldError("workload", "is required: the name of a workload of the request"))
        elif request.workload not in names:
            errors.append(FieldError("workload", f"unknown workload {request.workload!r}"))
        if request.site and request.site not in {s.name for s in problem.fleet.sites}:
            errors.append(FieldError("site", f"unknown site {request.site!r}"))
        plan = None
        if request.HasField("plan"):
            try:
                plan = convert.plan_from_proto(request.plan)
            except InputError as e:
                errors += _prefixed(e.errors, "plan.")
        if errors:
            raise InvalidArgument(errors)
        # with a plan: the filter's reasons and what keeps the workload out of that plan as it stands
        found = explain(problem, request.workload, request.site or None, plan)
        reasons = [convert.reason_to_proto(r) for r in found]
        placed = plan is not None and any(p.workload == request.workload for p in plan.placements)
        return pb.ExplainResponse(reasons=reasons, placed=placed)


class _Cancel(threading.Event):
    """Set when the call's cancel callback fires or the call is no longer active (polled)."""

    def __init__(self, event: threading.Event, context: grpc.ServicerContext) -> None:
        super().__init__()
        self._event = event
        self._context = context

    def is_set(self) -> bool:
        return self._event.is_set() or not self._context.is_active()
