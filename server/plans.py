"""The plan store's RPCs: ``GetPlan``, ``ListPlans`` and ``Rebalance``, mixed into the servicer.

The store is the one ``fleetplace serve --store URL`` names (``ServerConfig.store``), opened on
the first call; without one these RPCs are FAILED_PRECONDITION. ``Rebalance`` runs the same
steps as ``fleetplace rebalance`` (``fleetplace.rebalance``), its solve in the worker pool like
``Place``, within the call's deadline (the worker's solve verifies the plan and its migration
before it leaves); it is recorded as asked for by "rpc". Errors, mapped by
``server.errors`` like any other: another rebalance in progress or the current plan changed
meanwhile ABORTED; no such plan NOT_FOUND; no current plan and no input FAILED_PRECONDITION;
an unreachable store UNAVAILABLE; bad changes or input INVALID_ARGUMENT with every field path
(``changes.drainNodes[0]``, ``input.fleet.nodes[3].gpuCount``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import grpc

from placement.core.domain import Plan, Problem, SolveOptions
from placement.core.errors import FieldError
from server.errors import Aborted, InvalidArgument, NoStore, NotFound, StoreUnavailable
from wire import convert
from wire.gen.placement.v1 import placement_pb2 as pb

if TYPE_CHECKING:
    from fleetplace.store import PlanStore
    from server.config import ServerConfig

log = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 1000
MAX_MOVES = 1_000_000


class _NoPlan(Exception):
    """The caller went away during the solve: nothing to answer, nothing recorded."""


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    from fleetplace.rebalance import NothingToRebalance
    from fleetplace.store import CurrentChanged, PlanNotFound, StoreBusy, StoreError

    try:
        yield
    except (StoreBusy, CurrentChanged) as e:
        raise Aborted(str(e)) from None
    except PlanNotFound as e:
        raise NotFound(str(e)) from None
    except NothingToRebalance as e:
        raise NoStore(str(e)) from None
    except StoreError as e:
        raise StoreUnavailable(str(e)) from None


class PlanStoreRpcs:
    """``GetPlan``, ``ListPlans``, ``Rebalance`` for ``PlacementServicer`` (which has ``config`` and ``_solve``)."""

    config: ServerConfig
    _store: PlanStore | None = None
    _store_lock = threading.Lock()

    if TYPE_CHECKING:  # the servicer's

        def _solve(self, request: pb.PlaceRequest, context: grpc.ServicerContext) -> Iterator[Any]: ...

    def _plan_store(self) -> PlanStore:
        if not self.config.store:
            raise NoStore("this server has no plan store; start it with --store URL")
        with self._store_lock:
            if self._store is None:
                from fleetplace.store import open_store

                with _store_errors():
                    self._store = open_store(self.config.store)
                log.info("plan store: %s", self._store)
            return self._store

    def GetPlan(self, request: pb.GetPlanRequest, context: grpc.ServicerContext) -> pb.GetPlanResponse:
        store = self._plan_store()
        with _store_errors():
            plan_id = request.id or store.current_id()
            if plan_id is None:
                raise NotFound(f"the store {store} has no current plan")
            stored = store.get(plan_id)
        return pb.GetPlanResponse(
            record=convert.record_to_proto(stored.record),
            plan=convert.plan_to_proto(stored.plan),
            input=convert.request_from_problem(stored.problem),
        )

    def ListPlans(self, request: pb.ListPlansRequest, context: grpc.ServicerContext) -> pb.ListPlansResponse:
        errors = []
        if not 0 <= request.limit <= MAX_LIST_LIMIT:
            errors.append(FieldError("limit", f"must be 0 to {MAX_LIST_LIMIT}, got {request.limit}"))
        if request.before_id < 0:
            errors.append(FieldError("beforeId", f"must be zero or positive, got {request.before_id}"))
        if errors:
            raise InvalidArgument(errors)
        store = self._plan_store()
        with _store_errors():
            records = store.history(
                limit=request.limit or DEFAULT_LIST_LIMIT, before_id=request.before_id or None
            )
        return pb.ListPlansResponse(plans=[convert.record_to_proto(r) for r in records])

    def Rebalance(self, request: pb.RebalanceRequest, context: grpc.ServicerContext) -> pb.RebalanceResponse:
        from fleetplace.rebalance import Request, outcome_to_proto, rebalance
        from placement.changes import change_errors
        from placement.gate import Gate
        from placement.replan import ReplanBudgets
        from server.answers import problem_of

        errors: list[FieldError] = []
        problem: Problem | None = None
        if request.HasField("input"):
            try:
                problem = problem_of(request.input, "input.")
            except InvalidArgument as e:
                errors += e.errors
        changes, found = convert.changes_and_errors_from_proto(request.changes)
        errors += found
        if problem is not None and not found:  # against the stored input, they are checked on the way
            errors += change_errors(problem, changes)
        for name, has, value, high in (
            ("maxMoves", request.HasField("max_moves"), request.max_moves, MAX_MOVES),
            (
                "failIfMovesOver",
                request.HasField("fail_if_moves_over"),
                request.fail_if_moves_over,
                MAX_MOVES,
            ),
            (
                "failIfSitePowerOverPct",
                request.HasField("fail_if_site_power_over_pct"),
                request.fail_if_site_power_over_pct,
                100,
            ),
            (
                "failIfDomainPowerOverPct",
                request.HasField("fail_if_domain_power_over_pct"),
                request.fail_if_domain_power_over_pct,
                100,
            ),
        ):
            if has and not 0 <= value <= high:
                errors.append(FieldError(name, f"must be 0 to {high}, got {value}"))
        if request.HasField("time_limit_s") and not 0 < request.time_limit_s <= 86400:
            errors.append(
                FieldError("timeLimitS", f"must be above 0 and at most 86400, got {request.time_limit_s}")
            )
        if errors:
            raise InvalidArgument(errors)
        gate = Gate(
            max_moves=request.fail_if_moves_over if request.HasField("fail_if_moves_over") else None,
            allow_drop=request.allow_drop,
            max_site_power_pct=(
                request.fail_if_site_power_over_pct
                if request.HasField("fail_if_site_power_over_pct")
                else None
            ),
            max_domain_power_pct=(
                request.fail_if_domain_power_over_pct
                if request.HasField("fail_if_domain_power_over_pct")
                else None
            ),
        )

        def options(o: SolveOptions) -> SolveOptions:
            return replace(o, time_limit_s=request.time_limit_s) if request.HasField("time_limit_s") else o

        def solve(p: Problem) -> Plan:
            for item in self._solve(convert.request_from_problem(p), context):
                if isinstance(item, pb.Plan):
                    return convert.plan_from_proto(item)
            raise _NoPlan

        store = self._plan_store()
        wanted = Request(
            problem=problem,
            changes=changes,
            budgets=ReplanBudgets(max_moves=request.max_moves if request.HasField("max_moves") else None),
            gate=gate,
            dry_run=request.dry_run,
            requested_by="rpc",
            wait_s=0.0,
            options=options,
        )
        try:
            with _store_errors():
                outcome = rebalance(store, wanted, solve)
        except _NoPlan:
            log.info("rebalance cancelled by the caller; nothing recorded")
            return pb.RebalanceResponse()
        return outcome_to_proto(outcome)  # type: ignore[no-any-return]
