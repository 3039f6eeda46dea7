"""Ways to make or improve a plan, behind one protocol, in one registry.

A method has a ``name`` and ``run(prepared, budget, stop, start)``: it works on the filtered
instance within ``budget`` (``placement.run.timebudget``: a deadline on the solve's clock and, in
the deterministic mode, the work fixed in advance), stops early when ``stop`` is set, and
yields what it finds as it finds it:

* ``Found``: a plan (its placements, the LP/MIP solvers that ran for it, and whether it
  differs from ``start``); a method that finds several yields each better one;
* ``Bound``: a valid upper bound on tier 1 (placed work).

Constructive methods ignore ``start``; improving ones work on it (a plan in hand) and yield
one plan. ``applies(prepared)`` says whether a method can run on an instance at all.

The portfolio (``placement.run.portfolio``) runs lists of methods in child processes and sends
each result to the solve as it comes; the solve runs the greedy, the light polish and the
finishing methods (``FINISHING``) itself.

=================== ========== ==================================================================
name                kind       what
=================== ========== ==================================================================
keep_current        construct  ``placement.construct.keep``: the current placement repaired (forced
                               moves only, fewest), then filled; a re-plan's first plan in hand
greedy              construct  ``placement.construct.greedy``: first-fit decreasing, all or nothing per
                               workload, several orders while time allows
fgd                 construct  ``placement.construct.heuristics``: least expected GPU fragmentation (FGD)
best_fit            construct  ``placement.construct.heuristics``: the most allocated node (MostAllocated)
first_fit_decreasing construct ``placement.construct.heuristics``: the first node in site and rack order
lp_guided           construct  the node-group LP (``placement.bounds.bound``, GLOP): its bound, its
                               solution rounded (``placement.construct.guided``, ``GUIDED_VARIANTS``
                               one after the other), the integer bound after the first plan
lp_bound            bounds     the node-group LP's bound and the integer bound, no plans
relaxation_bound    bounds     the (site, GPU type) LP (``bound.relaxation_bound``)
polish              improve    ``polish.polish``: fill, relocate, swap tiers, rounds of
                               consolidate, power-domain repack (CP-SAT) and swap sets
light_polish        improve    ``polish.polish`` without the repack rounds (one swap-set round)
fgd_improve         improve    ``fgd.improve``: FGD's plan and the plan in hand, each with its
                               unused GPU shares refilled; fleets without spread or site
                               survival rules (``fgd.unsupported``)
=================== ========== ==================================================================

The registry's order is the deterministic mode's preference between plans equal on every
tier (``METHODS``: the earlier wins).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from placement.construct import greedy as greedy_mod
from placement.core.candidates import Prepared
from placement.core.domain import ReplicaPlacement
from placement.run.timebudget import CLOCK, TimeBudget

log = logging.getLogger(__name__)

Placements = tuple[ReplicaPlacement, ...]

# the LP-guided rounding, in these variants one after the other (workload order, round-up share,
# re-solve the LP for the last tier, the budgets' failures by the LP's prices); best first
# (figures: docs/experiments/2026-12-06-method-tuning.md)
GUIDED_VARIANTS = (
    (greedy_mod.order_key, 0.3, False, True),
    (greedy_mod.ORDERS[2], 0.3, False, True),
    (greedy_mod.order_key, 0.3, True, True),
    (greedy_mod.order_key, 0.5, False, True),
    (greedy_mod.order_key, 0.3, True, False),
    (greedy_mod.ORDERS[2], 0.3, True, False),
    (greedy_mod.order_key, 0.5, True, False),
    (greedy_mod.ORDERS[2], 0.5, True, False),
)
EARN_SHARE = 0.15  # of the time limit, at most, for ``improve.earn`` after keep_current
# under a move budget: the plans built from scratch break it, earn is the re-plan's search
EARN_SHARE_BUDGET = 0.5
EARN_TRIES_DET = 300  # tries of ``earn`` in all in the deterministic mode
LP_TOO_BIG = 2  # lp_guided gives up at once past this many times the LP's column cap (estimated)


@dataclass(frozen=True)
class Found:
    """A plan a method found; ``changed``: it differs from the plan the method started from."""

    placements: Placements
    solvers: tuple[str, ...] = ()
    changed: bool = True


@dataclass(frozen=True)
class Bound:
    """A valid upper bound on tier 1 (None: the method has none), and what it comes from."""

    value: float | None
    source: str


class Method(Protocol):
    @property
    def name(self) -> str: ...

    def applies(self, prepared: Prepared) -> bool:
        """Whether the method can run on this instance at all (cheap)."""
        ...

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        """What the method finds, as it finds it (module docstring)."""
        ...


def last_plan(items: Iterator[Found | Bound]) -> Found | None:
    """The last plan a method yields (its best), or None."""
    got = None
    for item in items:
        if isinstance(item, Found):
            got = item
    return got


# ------------------------------------------------------------------------ the methods


@dataclass(frozen=True)
class Greedy:
    """``passes``: orders tried (0: as many as the deadline allows); the deterministic mode
    takes ``effort.greedy_orders`` and never skips one for want of time."""

    name: str = "greedy"
    passes: int = 0

    def applies(self, prepared: Prepared) -> bool:
        return True

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        effort = budget.effort
        passes = effort.greedy_orders if effort is not None else self.passes
        st = greedy_mod.greedy(
            prepared, deadline=budget.deadline, stop=stop, passes=passes, deterministic=effort is not None
        )
        yield Found(st.to_placements())


@dataclass(frozen=True)
class KeepCurrent:
    """The current placement repaired and filled; applies where workloads run (current, not pinned)."""

    name: str = "keep_current"

    def applies(self, prepared: Prepared) -> bool:
        return any(w.running for w in prepared.problem.workloads)

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        from placement.construct.keep import keep_current
        from placement.improve.earn import earn

        st = keep_current(prepared, budget.deadline, stop)
        if budget.effort is not None:  # deterministic: bounded by counts, never by the clock
            earn(st, None, stop, most=EARN_TRIES_DET)
        else:  # a share of what is left, so that the greedy and the portfolio keep theirs
            share = EARN_SHARE if prepared.problem.options.max_moves is None else EARN_SHARE_BUDGET
            earn(st, min(budget.deadline, budget.after(share)), stop)
        yield Found(st.to_placements())


@dataclass(frozen=True)
class Heuristic:
    """One of ``placement.construct.heuristics.HEURISTICS`` by name (they take no deadline)."""

    name: str

    def applies(self, prepared: Prepared) -> bool:
        return True

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        from placement.construct import heuristics

        yield Found(tuple(heuristics.HEURISTICS[self.name](prepared.problem)))


@dataclass(frozen=True)
class LpGuided:
    """The node-group LP and its roundings (``plans``), or its bounds alone."""

    name: str = "lp_guided"
    plans: bool = True

    def applies(self, prepared: Prepared) -> bool:
        return True

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        from placement.bounds.bound import (
            MAX_COLUMNS,
            GroupLP,
            Residual,
            columns_estimate,
            group_lp,
            integer_bound,
        )
        from placement.construct.guided import guided

        problem, deadline = prepared.problem, budget.deadline
        if columns_estimate(prepared) > LP_TOO_BIG * MAX_COLUMNS:
            log.info("group LP: far over its column cap; not built")  # it would refuse after its classes
            return
        lp = group_lp(problem, deadline, solution=self.plans)
        yield Bound(lp.bound if lp is not None else None, "group LP")
        if lp is None:
            return
        if not self.plans:
            yield Bound(integer_bound(lp, deadline), "integer")
            return

        def resolve(left: Residual) -> GroupLP | None:
            return group_lp(problem, deadline, solution=True, residual=left)

        variants = budget.effort.guided_variants if budget.effort is not None else len(GUIDED_VARIANTS)
        for i, (order_by, round_up, again, priced) in enumerate(GUIDED_VARIANTS[:variants]):
            if i == 1:
                yield Bound(integer_bound(lp, deadline), "integer")
            if CLOCK() > deadline or (stop is not None and stop.is_set()):
                break
            st = guided(
                prepared,
                lp,
                deadline,
                resolve=resolve if again else None,
                order_by=order_by,
                round_up=round_up,
                priced=priced,
            )
            yield Found(st.to_placements(), ("glop",))


@dataclass(frozen=True)
class RelaxationBound:
    name: str = "relaxation_bound"

    def applies(self, prepared: Prepared) -> bool:
        return True

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        from placement.bounds.bound import relaxation_bound

        yield Bound(relaxation_bound(prepared.problem), "relaxation")


@dataclass(frozen=True)
class Polish:
    """``polish.polish`` of ``start`` until the budget's deadline; with ``repack`` the power
    domains are repacked (in the deterministic mode ``effort.polish_rounds`` rounds, each
    domain bounded by ``effort.repack_det_s`` of CP-SAT's deterministic time)."""

    name: str = "polish"
    repack: bool = True

    def applies(self, prepared: Prepared) -> bool:
        return True

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        from placement.core.state import FleetState
        from placement.improve.polish import polish

        effort = budget.effort if self.repack else None
        st = FleetState.from_placements(prepared, start)
        added, moved, gained = polish(
            st,
            budget.deadline,
            repack=self.repack,
            rounds=effort.polish_rounds if effort is not None else None,
            repack_det_s=effort.repack_det_s if effort is not None else None,
        )
        changed = bool(added or moved or gained)
        if changed:
            log.info("%s: %d workloads added, %d replicas moved up or swapped", self.name, added, moved)
        # an unchanged plan comes back as it was given, except from the repack, whose plan is
        # always the state's (its order is the one the solve has always used)
        placements = st.to_placements() if changed or self.repack else tuple(start)
        yield Found(placements, ("cp-sat",) if self.repack else (), changed)


@dataclass(frozen=True)
class FgdImprove:
    """``placement.construct.fgd.improve`` on ``start`` (the Alibaba fleets: no spread, no site survival)."""

    name: str = "fgd_improve"

    def applies(self, prepared: Prepared) -> bool:
        from placement.construct import fgd

        return not fgd.unsupported(prepared.problem)

    def run(
        self,
        prepared: Prepared,
        budget: TimeBudget,
        stop: threading.Event | None = None,
        start: Placements = (),
    ) -> Iterator[Found | Bound]:
        from placement.construct import fgd

        got = tuple(fgd.improve(prepared.problem, start, deadline=budget.deadline))
        yield Found(got, (), got != tuple(start))


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        KeepCurrent(),
        Greedy(),
        Heuristic("fgd"),
        Heuristic("best_fit"),
        Heuristic("first_fit_decreasing"),
        LpGuided(),
        LpGuided("lp_bound", plans=False),
        RelaxationBound(),
        Polish(),
        Polish("light_polish", repack=False),
        FgdImprove(),
    )
}
HEURISTICS = ("fgd", "best_fit", "first_fit_decreasing")
FINISHING = ("fgd_improve",)  # run on the plan in hand last, where no per-node model is built
FINISHING_SHARE = 0.2  # of the time limit kept for them


def method(name: str) -> Method:
    """The registered method ``name`` (a ``KeyError`` names what is not registered)."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"no method {name!r}; registered: {', '.join(METHODS)}") from None


def preference(name: str) -> int:
    """The registry's order (``METHODS``): between plans equal on every tier the earlier wins."""
    order = list(METHODS)
    return order.index(name) if name in order else len(order)


def chain(names: Sequence[str]) -> str:
    """How ``SolveInfo.method`` names a plan made by several methods, first to last."""
    return "+".join(names)
