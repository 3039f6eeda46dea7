"""Re-planning against a running placement: the one seam the nightly rebalance calls.

    replan(problem_with_current, changes, budgets) -> Replanned(problem, plan)

``problem_with_current`` is the instance with each workload's ``current`` set to where its
replicas run today, on which GPUs and at which cap (``with_current`` fills it from the current
plan's placements). ``replan`` applies the changes (``placement.changes``), sets the move budget
(``ReplanBudgets.max_moves`` into ``SolveOptions.max_moves``), checks the changed instance
(every problem at once, with the path the user wrote: ``changes.addWorkloads[0].gpus``) and
solves it with today's engine: a solve whose workloads carry ``current`` is the re-plan
(the current placement kept as the first plan, moves priced, disruption budgets held,
preemption upward only). Its plan carries ``displaced`` (each move and why) and ``migration``
(the make-before-break steps, checked by the transient verifier).

The callers (``fleetplace rebalance``, the ``Rebalance`` RPC) still check the result against
the budgets and the gate (``placement.gate``) before recording it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from placement.changes import FleetChanges, apply_changes, input_path, trim_current
from placement.core.domain import (
    CurrentReplica,
    Migration,
    Plan,
    Problem,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    current_cap_w,
)
from placement.core.errors import FieldError, InputError

log = logging.getLogger(__name__)

SolveFn = Callable[[Problem], Plan]


@dataclass(frozen=True)
class ReplanBudgets:
    """Disruption budgets of a re-plan, held by the solve (``SolveOptions``) and checked on the result."""

    max_moves: int | None = None  # unforced moves of current replicas off their node (rule 14)


@dataclass(frozen=True)
class Replanned:
    problem: Problem  # the instance as planned: changes applied, current placement filled
    plan: Plan

    @property
    def migration(self) -> Migration | None:
        """The steps from the current placement to the plan (None: nothing runs, or no plan)."""
        return self.plan.migration


def with_current(problem: Problem, placements: Iterable[ReplicaPlacement]) -> Problem:
    """``problem`` with each workload's ``current`` replaced by where ``placements`` run it: node,
    GPU indices and power cap (the plan's per-GPU cap; a fractional replica's GPU runs uncapped).

    Pinned workloads keep the ``current`` of the input (their replicas must not move). A
    placement that cannot run as it is in this instance (an unknown node, another GPU count per
    replica, a GPU index beyond the node) is left out, and a workload keeps at most
    ``max_replicas`` current replicas, those on READY nodes first (``changes.trim_current``).
    """
    running: dict[str, list[ReplicaPlacement]] = defaultdict(list)
    for p in placements:
        running[p.workload].append(p)
    nodes = {n.name: n for n in problem.fleet.nodes}
    out = []
    for w in problem.workloads:
        if not w.pinned:
            here = sorted(running.get(w.name, ()), key=lambda p: p.replica)
            current = tuple(CurrentReplica(p.node, tuple(p.gpu_indices), p.power_cap_w) for p in here)
            w = trim_current(replace(w, current=current), nodes)
        out.append(w)
    return replace(problem, workloads=tuple(out))


def running_plan(problem: Problem) -> Plan:
    """What runs today according to the instance's ``current`` replicas, as a plan: each replica on
    its node and GPUs at its recorded cap (``current_cap_w``: the board maximum where none is
    recorded, and for a fractional replica), with the power budgets of that placement.

    The "before" of a re-plan when no earlier plan is at hand; replicas on unknown nodes are left out.
    """
    from placement.core.budgets import compute_budgets
    from placement.core.objective import evaluate

    nodes = {n.name: n for n in problem.fleet.nodes}
    gpus = {g.name: g for g in problem.fleet.gpu_types}
    placements = []
    for w in problem.workloads:
        for i, c in enumerate(w.current):
            node = nodes.get(c.node)
            if node is None:
                continue
            placements.append(
                ReplicaPlacement(
                    workload=w.name,
                    replica=i,
                    site=node.site,
                    power_domain=node.power_domain,
                    node=c.node,
                    gpu_indices=tuple(c.gpu_indices),
                    gpu_milli=w.gpu_milli if w.is_fractional else 1000,
                    power_cap_w=current_cap_w(w, c, gpus[node.gpu_type]) if node.gpu_type in gpus else 0,
                )
            )
    return Plan(
        placements=tuple(placements),
        budgets=compute_budgets(problem, tuple(placements)),
        unplaced=(),
        objective=evaluate(problem, tuple(placements)),
        info=SolveInfo(status=SolveStatus.FEASIBLE),
    )


def replan(
    problem_with_current: Problem,
    changes: FleetChanges,
    budgets: ReplanBudgets,
    solve_fn: SolveFn | None = None,
) -> Replanned:
    """Apply ``changes`` and plan again within ``budgets`` (see the module docstring).

    ``solve_fn`` solves the changed instance (default ``placement.solve``; the CLI passes its
    interruptible solve, the service its worker pool). ``InputError`` lists every problem of the
    changes or of the changed instance, with the path the user wrote.
    """
    from placement.core.validate import validate_request

    changed = apply_changes(problem_with_current, changes)
    if budgets.max_moves is not None:  # the solve holds it (rule 14); the gate checks the result
        changed = replace(changed, options=replace(changed.options, max_moves=budgets.max_moves))
    errors = validate_request(changed)
    if errors:
        raise InputError(
            [FieldError(input_path(problem_with_current, changes, e.path), e.message) for e in errors]
        )
    if solve_fn is None:
        from placement import solve

        solve_fn = solve
    log.info(
        "replan: %s; %d current replicas; move budget %s",
        changes.summary(),
        sum(len(w.current) for w in changed.workloads),
        budgets.max_moves,
    )
    try:
        plan = solve_fn(changed)
    except InputError as e:  # e.g. a pinned replica on a node the changes drained
        raise InputError(
            [FieldError(input_path(problem_with_current, changes, x.path), x.message) for x in e.errors]
        ) from None
    return Replanned(problem=changed, plan=plan)
