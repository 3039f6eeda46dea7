"""The gate a new plan must pass before it replaces the running one, checked on the plan itself.

Each rule is a named check with its numbers (``GateFailure.rule``):

* ``move_budget``: more unforced moves than the re-plan's budget (``ReplanBudgets.max_moves``).
  The solve holds the budget (``SolveOptions.max_moves``, rule 14); the gate checks the result
  all the same, so that a plan over it is never recorded.
* ``moves``: more moves, forced ones included, than ``Gate.max_moves`` (``--fail-if moves>N``).
* ``dropped``: a running workload is not placed any more (unless ``Gate.allow_drop``).
* ``site_power`` / ``domain_power``: a site or power domain draws more than the given share of
  its usable cap (``--fail-if site-power>PCT``, ``domain-power>PCT``).
* ``no_solution``: the solve returned no plan (NO_SOLUTION): nothing to switch to.
* ``unsafe_migration``: the plan's migration is not safe (a blocked move, or a replica down
  beyond its budget), where ``Gate.safe_migration`` asks for a safe one (``--fail-if
  unsafe-migration``).

Moves are counted as ``placement.diff`` counts them, from ``Plan.displaced``: replicas that ran
and are not kept on their node (moved elsewhere or evicted), a removed workload's replicas
excepted; unforced ones are those the input does not force (what ``max_moves`` budgets).
"""

from __future__ import annotations

from dataclasses import dataclass

from placement.core.domain import Plan, Problem, SolveStatus
from placement.diff import PlanDiff


@dataclass(frozen=True)
class Gate:
    max_moves: int | None = None
    allow_drop: bool = False
    max_site_power_pct: float | None = None
    max_domain_power_pct: float | None = None
    safe_migration: bool = False


@dataclass(frozen=True)
class GateFailure:
    rule: str  # move_budget, moves, dropped, site_power, domain_power, no_solution, unsafe_migration
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


def dropped_running(problem: Problem, plan: Plan) -> list[str]:
    """Workloads with current replicas (they run today) that ``plan`` does not place."""
    placed = {p.workload for p in plan.placements}
    return [w.name for w in problem.workloads if w.current and w.name not in placed]


def _names(items: list[str], limit: int = 10) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check(gate: Gate, diff: PlanDiff, plan: Plan, move_budget: int | None = None) -> list[GateFailure]:
    """Every rule the plan breaks (empty: it passes). ``diff`` is from the running plan to ``plan``."""
    out: list[GateFailure] = []
    if plan.info.status is SolveStatus.NO_SOLUTION:
        out.append(GateFailure("no_solution", "the solve found no plan in time; the running plan stays"))
    if move_budget is not None and diff.unforced_moves > move_budget:
        out.append(
            GateFailure(
                "move_budget",
                f"{diff.unforced_moves} unforced moves exceed the move budget of {move_budget}",
            )
        )
    if gate.max_moves is not None and diff.moves > gate.max_moves:
        out.append(GateFailure("moves", f"{diff.moves} moves > {gate.max_moves}"))
    if diff.dropped and not gate.allow_drop:
        n = len(diff.dropped)
        out.append(
            GateFailure(
                "dropped",
                f"{n} running workload{'s are' if n != 1 else ' is'} not placed any more: "
                f"{_names(list(diff.dropped))}",
            )
        )
    m = plan.migration
    if gate.safe_migration and m is not None and not m.safe:
        down = len({(t.workload, t.node) for t in m.downtime if not t.within_budget})
        out.append(
            GateFailure(
                "unsafe_migration",
                f"the migration is not safe: {len(m.blocked)} blocked move(s), {down} replica(s) down "
                "beyond their budget",
            )
        )
    for limit, kind, rule, what in (
        (gate.max_site_power_pct, plan.budgets.sites, "site_power", "site"),
        (gate.max_domain_power_pct, plan.budgets.power_domains, "domain_power", "power domain"),
    ):
        if limit is None:
            continue
        # in whole watts, as the budgets hold them, so that exactly at the limit passes
        over = [b for b in kind if round(b.it_kw * 1000) * 100 > limit * round(b.usable_kw * 1000)]
        for b in sorted(over, key=lambda b: -b.it_kw / b.usable_kw)[:10]:
            name = b.name if b.kind == "site" else f"{b.site}/{b.name}"
            out.append(
                GateFailure(
                    rule,
                    f"{what} {name} draws {b.it_kw:,.1f} kW, {b.it_kw / b.usable_kw * 100:.1f}% of its "
                    f"usable {b.usable_kw:,.1f} kW (limit {limit:g}%)",
                )
            )
        if len(over) > 10:
            out.append(GateFailure(rule, f"and {len(over) - 10} more {what}s over {limit:g}%"))
    return out
