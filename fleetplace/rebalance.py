"""The nightly rebalance: re-plan against the store's current plan, gate it, record it as current.

Used by ``fleetplace rebalance`` and by the ``Rebalance`` RPC (``server/plans.py``), so both
behave alike:

1. Lock the store (``PlanStore.lock("rebalance")``): one rebalance at a time; another one waits
   up to ``wait_s`` or fails with ``StoreBusy``. A dry run takes no lock and records nothing.
2. The current plan: the store's, or one given (``--current FILE``).
3. The instance: the one given (the fleet as it is now) or the current plan's own input; each
   workload's ``current`` is set from the current plan (``placement.replan.with_current``). With
   no current plan at all (the first run), the input's own ``current`` replicas are what runs.
4. ``placement.replan.replan(problem, changes, budgets)``: the changes applied, re-planned by
   today's engine within the move budget; the plan carries its moves (``displaced``) and its
   migration steps.
5. The diff from the current plan (``placement.diff``, its reasons the plan's ``displaced``) and
   the gate (``placement.gate``).
6. Unless a dry run or the gate refused it: the new plan is recorded as the current plan,
   switched in one transaction only if the plan it started from is still current.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fleetplace.store import LockHolder, PlanRecord, PlanStore
from placement.changes import FleetChanges
from placement.core.domain import Plan, Problem, SolveOptions
from placement.diff import PlanDiff, diff_plans
from placement.gate import Gate, GateFailure, check
from placement.replan import ReplanBudgets, Replanned, SolveFn, replan, running_plan, with_current

log = logging.getLogger(__name__)

LOCK = "rebalance"


class NothingToRebalance(Exception):
    """No input was given and the store has no current plan to take it from."""


@dataclass(frozen=True)
class Request:
    problem: Problem | None  # the fleet and workloads as they are now; None: the current plan's input
    changes: FleetChanges = field(default_factory=FleetChanges)
    budgets: ReplanBudgets = field(default_factory=ReplanBudgets)
    gate: Gate = field(default_factory=Gate)
    dry_run: bool = False
    requested_by: str = "cli"
    wait_s: float = 0.0  # for another rebalance's lock
    current_plan: Plan | None = None  # instead of the store's current plan (``--current FILE``)
    options: Callable[[SolveOptions], SolveOptions] | None = None  # applied to the instance's options


@dataclass(frozen=True)
class Outcome:
    previous: PlanRecord | None  # the store's current plan it started from
    before: Plan  # the running placement (a plan that places nothing when there is none)
    replanned: Replanned
    diff: PlanDiff
    failures: tuple[GateFailure, ...]  # empty: the gate passed
    record: PlanRecord | None  # the new current plan; None under a dry run or when the gate refused

    @property
    def recorded(self) -> bool:
        return self.record is not None


def lock_ttl_s(request: Request) -> float:
    """The lease of the rebalance lock: three times the solve's limit and five minutes more, so that
    a holder that died is taken over at the latest then (on its own host at once)."""
    options = request.problem.options if request.problem is not None else SolveOptions()
    if request.options is not None:
        options = request.options(options)
    return 3 * options.time_limit_s + 300


def _run(store: PlanStore, request: Request, solve_fn: SolveFn | None) -> Outcome:
    stored = store.current()
    previous = stored.record if stored is not None else None
    base = request.problem or (stored.problem if stored is not None else None)
    if base is None:
        raise NothingToRebalance(
            f"the store {store} has no current plan; give the fleet and workloads (INPUT) for the first one"
        )
    if request.options is not None:
        base = replace(base, options=request.options(base.options))
    running = request.current_plan or (stored.plan if stored is not None else None)
    if running is None:  # no plan yet: what runs is what the input says (its current replicas)
        problem = base
        before = running_plan(base)
    else:
        problem = with_current(base, running.placements)
        before = running
    replanned = replan(problem, request.changes, request.budgets, solve_fn)
    diff = diff_plans(before, replanned.plan)
    failures = tuple(check(request.gate, diff, replanned.plan, request.budgets.max_moves))
    record = None
    if not request.dry_run and not failures:
        record = store.record(
            replanned.problem,
            replanned.plan,
            requested_by=request.requested_by,
            kind="rebalance",
            current=True,
            expected_current=previous.id if previous is not None else None,
            parent_id=previous.id if previous is not None else None,
            changes=request.changes,
        )
    elif failures:
        log.info("rebalance refused by the gate: %s", "; ".join(str(f) for f in failures))
    return Outcome(previous, before, replanned, diff, failures, record)


def rebalance(
    store: PlanStore,
    request: Request,
    solve_fn: SolveFn | None = None,
    on_locked: Callable[[], None] | None = None,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> Outcome:
    """Run a rebalance (see the module docstring). ``on_wait`` is called if another rebalance holds
    the lock and this one waits for it; ``on_locked`` once the lock is held."""
    if request.dry_run:
        return _run(store, request, solve_fn)
    with store.lock(LOCK, ttl_s=lock_ttl_s(request), wait_s=request.wait_s, on_wait=on_wait):
        if on_locked is not None:
            on_locked()
        return _run(store, request, solve_fn)


def outcome_to_proto(outcome: Outcome) -> Any:
    """The ``placement.v1.RebalanceResponse`` of an outcome (the RPC's answer; ``--format json``)."""
    from wire.convert import rebalance_to_proto

    return rebalance_to_proto(
        outcome.replanned.plan,
        outcome.diff,
        outcome.failures,
        outcome.previous.id if outcome.previous is not None else None,
        outcome.record,
    )
