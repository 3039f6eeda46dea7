"""The LP-guided greedy: round the node-group LP's solution into a plan.

``placement.bounds.bound.group_lp`` says, per class of alike workloads, how many GPU
thousandths to run on each group of alike nodes and at which power level. Where power
caps bind, that solution runs many GPUs below their top level (more GPUs under the
same watts: throughput grows about with the square root of the cap), which the
greedy and the heuristics, best level first, never do.

``guided(prepared, lp)`` turns the solution into budgets per (class, node group, level)
and runs the greedy's own ``place_workload`` (every hard rule through ``FleetState``,
all or nothing per workload) with a guide that lets a replica go only where its class
has budget left, at or below the budget's level. A replica may take a budget down to
``round_up`` of one replica's thousandths (rounding up: the fleet's own checks, not the
budget, decide whether it fits). Workloads go tier by tier (priority); in each tier,
those the budgets cannot place (minimum replicas, spread, survival, power the LP
spreads too thin) go to the plain greedy right away, before any lower tier takes the
room, and then the tier's placed workloads get replicas up to max_replicas. The last
tier, the one the LP fills only in part, is rounded from a second LP over what the
earlier tiers left (``resolve``).

The failures and the top-ups go by the LP's prices (``_Priced``): where the LP makes them
cheapest, not first fit.

Last, ``greedy.swap_tiers``: a higher tier's replica capped low and a lower tier's replica
of as many GPUs (of any type) at a higher level trade places (each GPU keeps its cap, so
no rack draws more).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from placement.bounds.bound import GroupKey, GroupLP, Prices, Residual
from placement.construct.greedy import (
    _Dead,
    order_key,
    place_pinned,
    place_workload,
    placed_work,
    raise_levels,
    swap_tiers,
)
from placement.core.candidates import CellOption, Prepared
from placement.core.domain import NodeState, Workload
from placement.core.energy import allowed_levels
from placement.core.state import FleetState

log = logging.getLogger(__name__)

ROUND_UP = 0.3  # a replica may use a budget holding at least this share of its thousandths
_CHECK_EVERY = 32
SWAP_PASSES = 3  # swap_tiers until it finds none (measured: 2-3 passes find them all)


class _Budgets:
    """Budgets per (class, LP group key) and level, in GPU thousandths; implements ``greedy.Guide``."""

    def __init__(self, prepared: Prepared, lp: GroupLP, round_up: float = ROUND_UP) -> None:
        self.p = prepared
        self.round_up = round_up
        self.key_of: list[GroupKey] = []
        for g in prepared.groups:
            n = g.rep.node
            self.key_of.append((n.site, n.power_domain, n.gpu_type, n.gpu_count, n.host_power_w))
        self.class_of: dict[int, int] = {}
        for c, members in enumerate(lp.classes):
            for w in members:
                self.class_of[w] = c
        self.left: dict[tuple[int, GroupKey], dict[int, float]] = defaultdict(dict)
        for c, key, level, milli in lp.columns:
            got = self.left[(c, key)]
            got[level] = got.get(level, 0.0) + milli
        self.taken: dict[int, list[tuple[int, GroupKey, int, float]]] = defaultdict(list)

    def _need(self, w: int) -> float:
        return self.round_up * self.p.problem.workloads[w].work_milli

    def _room(self, w: int, group: int) -> float:
        c = self.class_of.get(w)
        if c is None:
            return 0.0
        got = self.left.get((c, self.key_of[group]))
        return sum(got.values()) if got else 0.0

    def order(self, w: int, opts: list[CellOption]) -> list[CellOption]:
        """Cells and groups with budget for ``w``, the most budget first."""
        need = self._need(w)
        ranked: list[tuple[float, int, CellOption]] = []
        for i, o in enumerate(opts):
            fits = [(self._room(w, f.group), f) for f in o.fits]
            fits = [(r, f) for r, f in fits if r >= need]
            if not fits:
                continue
            fits.sort(key=lambda rf: -rf[0])
            total = sum(r for r, _ in fits)
            ranked.append((-total, i, CellOption(o.cell, o.per_gpu, tuple(f for _, f in fits))))
        ranked.sort(key=lambda t: (t[0], t[1]))
        return [o for _, _, o in ranked]

    def levels(self, w: int, group: int, levels: tuple[int, ...]) -> tuple[int, ...] | None:
        """The allowed levels up to the highest level with budget; None without budget."""
        c = self.class_of.get(w)
        if c is None:
            return None
        got = self.left.get((c, self.key_of[group]))
        if not got:
            return None
        need = self._need(w)
        with_budget = [lv for lv, m in got.items() if m >= need]
        if not with_budget:
            return None
        if self.p.problem.workloads[w].is_fractional:
            return levels
        top = max(with_budget)
        allowed = tuple(lv for lv in levels if lv <= top)
        return allowed or None

    def take(self, w: int, group: int, level: int) -> None:
        c = self.class_of[w]
        key = self.key_of[group]
        got = self.left[(c, key)]
        need = self._need(w)
        # the budget at the placed level, else the nearest level above it that has budget
        choices = sorted(lv for lv, m in got.items() if m >= need and lv >= level)
        at = choices[0] if choices else max(got, key=lambda lv: got[lv])
        amount = float(self.p.problem.workloads[w].work_milli)
        got[at] -= amount
        self.taken[w].append((c, key, at, amount))

    def release(self, w: int) -> None:
        for c, key, at, amount in self.taken.pop(w, []):
            self.left[(c, key)][at] += amount

    def commit(self, w: int) -> None:
        self.taken.pop(w, None)


def guided(
    prepared: Prepared,
    lp: GroupLP,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    resolve: Callable[[Residual], GroupLP | None] | None = None,
    order_by: Callable[[Workload, int], tuple[object, ...]] = order_key,
    round_up: float = ROUND_UP,
    squeeze: bool = True,
    priced: bool = True,
) -> FleetState:
    """The LP-guided plan (module docstring): a valid plan, all or nothing per workload.

    Workloads go by priority tier, highest first. In each tier: every workload by the
    budgets; then those that failed by the greedy (a tier's value per thousandth is
    above every later tier's, so they may take room the LP meant for later tiers); then
    more replicas for the tier's workloads short of max_replicas. With ``priced`` (and the
    LP's prices at hand) these two go where the LP's prices make them cheapest (``_Priced``),
    else first fit. ``resolve``, when given,
    re-solves the LP over what is left (``bound.Residual``) before the last tier, whose
    budgets the earlier tiers' differences from the LP have made stale. Then the levels go up
    wherever watts are left (``greedy.raise_levels``), with ``squeeze`` the lowest tier
    is squeezed (``_squeezed``), and capped replicas of higher tiers trade places with lower
    tiers' replicas at higher levels (``greedy.swap_tiers``).
    """
    t0 = time.monotonic()
    wl = prepared.problem.workloads
    st = FleetState(prepared)
    place_pinned(st)
    budgets = _Budgets(prepared, lp, round_up)
    order = sorted(prepared.options, key=lambda w: order_by(wl[w], w))
    tiers: list[list[int]] = []
    for w in sorted(order, key=lambda w: -wl[w].priority):  # stable: order_by within a tier
        if not tiers or wl[tiers[-1][0]].priority != wl[w].priority:
            tiers.append([])
        tiers[-1].append(w)
    counts = [0, 0, 0]  # replicas by budget, by the tier's fill, topped up
    checks = 0

    def late() -> bool:
        nonlocal checks
        checks += 1
        if checks % _CHECK_EVERY:
            return False
        return (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set())

    for ti, tier in enumerate(tiers):
        if resolve is not None and ti == len(tiers) - 1 and ti > 0:
            again = resolve(residual(st, budgets, tier))
            if again is not None:
                budgets = _Budgets(prepared, again, round_up)
        failed: list[int] = []
        before = len(st.placements)
        for w in tier:
            if late():
                log.info("guided stopped at its deadline")
                return st
            if w in budgets.class_of and place_workload(st, w, None, budgets):
                budgets.commit(w)
            else:
                failed.append(w)
        counts[0] += len(st.placements) - before
        before = len(st.placements)
        dead = _Dead()
        by_price = _Priced(prepared, lp.prices) if priced and lp.prices is not None else None
        for w in failed:
            if late():
                return st
            place_workload(st, w, dead, by_price)
        counts[1] += len(st.placements) - before
        before = len(st.placements)
        in_tier = set(tier)
        have_of: dict[int, list[int]] = defaultdict(list)
        for w, n, *_ in st.placements:
            if w in in_tier:
                have_of[w].append(n)
        for w in tier:
            if late():
                return st
            have = have_of.get(w)
            if have and len(have) < wl[w].max_replicas:
                place_workload(st, w, dead, by_price, have)
        counts[2] += len(st.placements) - before
    steps = raise_levels(st)
    log.info(
        "guided: %d replicas by the LP's budgets, %d by the greedy, %d topped up, %d levels raised (%.2f s)",
        *counts,
        steps,
        time.monotonic() - t0,
    )
    past = (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set())
    if squeeze and tiers and not past:  # (late() looks at the clock only every _CHECK_EVERY calls)
        st = _squeezed(st, wl[tiers[-1][0]].priority)
    swaps = 0
    for _ in range(SWAP_PASSES):
        got = swap_tiers(st, deadline)
        swaps += got
        if not got:
            break
    if swaps:
        log.info("guided: %d swaps of a capped replica and a lower tier's replica at a higher level", swaps)
    return st


class _Priced:
    """A ``greedy.Guide`` by the LP's prices (``bound.Prices``) for what the budgets did not place.

    Cells, groups and the level go by what a replica earns less what it takes from the
    others (its GPU thousandths and watts at the LP's dual values), the best first; the
    levels up to the best one stay allowed (power may be short for it). The plain greedy,
    first fit at the best level, puts these replicas where the LP meant other classes to be
    and at the top level where watts are scarce.
    """

    def __init__(self, prepared: Prepared, prices: Prices) -> None:
        self.p = prepared
        self.prices = prices
        self._best: dict[tuple[int, int], tuple[float, int]] = {}

    def _score(self, w: int, group: int, level: int) -> float:
        wk = self.p.problem.workloads[w]
        rep = self.p.groups[group].rep
        n, g = rep.node, rep.gpu
        lv = g.power_levels[level]  # a shared GPU (-1): the top level, at the type's max power
        cap = g.max_power_w if level < 0 else lv.power_cap_w
        pr = self.prices
        per_w = pr.domain_w.get((n.site, n.power_domain), 0.0) + pr.site_w.get(n.site, 0.0)
        key = (n.site, n.power_domain, n.gpu_type, n.gpu_count, n.host_power_w)
        milli = wk.work_milli
        price = milli * (pr.gpu_milli.get(key, 0.0) + per_w * (cap + n.host_power_w / n.gpu_count) / 1000.0)
        return wk.priority * lv.relative_throughput_pct * milli - price

    def _best_at(self, w: int, group: int, levels: tuple[int, ...]) -> tuple[float, int]:
        got = self._best.get((w, group))
        if got is None:
            if self.p.problem.workloads[w].is_fractional or not levels:
                got = (self._score(w, group, -1), -1)
            else:
                got = max((self._score(w, group, lv), lv) for lv in levels)
            self._best[(w, group)] = got
        return got

    def order(self, w: int, opts: list[CellOption]) -> list[CellOption]:
        ranked: list[tuple[float, int, CellOption]] = []
        for i, o in enumerate(opts):
            fits = sorted(o.fits, key=lambda f: -self._best_at(w, f.group, f.levels)[0])
            top = self._best_at(w, fits[0].group, fits[0].levels)[0] if fits else -math.inf
            ranked.append((-top, i, CellOption(o.cell, o.per_gpu, tuple(fits))))
        ranked.sort(key=lambda t: (t[0], t[1]))
        return [o for _, _, o in ranked]

    def levels(self, w: int, group: int, levels: tuple[int, ...]) -> tuple[int, ...] | None:
        if self.p.problem.workloads[w].is_fractional:
            return levels
        best = self._best_at(w, group, levels)[1]
        return tuple(lv for lv in levels if lv <= best) or levels

    def take(self, w: int, group: int, level: int) -> None:
        pass

    def release(self, w: int) -> None:
        pass


class _Lowest:
    """A ``greedy.Guide`` that keeps the lowest tier at its lowest allowed power level."""

    def __init__(self, prepared: Prepared, priority: int) -> None:
        self.wl = prepared.problem.workloads
        self.priority = priority

    def order(self, w: int, opts: list[CellOption]) -> list[CellOption]:
        return opts

    def levels(self, w: int, group: int, levels: tuple[int, ...]) -> tuple[int, ...] | None:
        return levels[:1] if self.wl[w].priority <= self.priority else levels

    def take(self, w: int, group: int, level: int) -> None:
        pass

    def release(self, w: int) -> None:
        pass


def _squeezed(st: FleetState, lowest: int) -> FleetState:
    """The plan with its lowest tier at the lowest power levels, more workloads placed in the
    watts that frees, then every level raised again (``raise_levels``); the better of the two.

    Where power binds, the LP runs the lowest tier at low levels and places more of it; the
    rounded plan leaves the watts of its top-level replicas where whole free nodes wait for
    power. Profile L seed 0: 1.73% -> 1.68% (0.8 s); M 1.66% -> 1.61%.
    """
    p = st.p
    wl = p.problem.workloads
    new = FleetState.from_placements(p, st.to_placements())
    for i, (w, n, _idx, _milli, cap) in enumerate(new.placements):
        wk = wl[w]
        if wk.priority > lowest or wk.is_fractional or wk.pinned:
            continue
        floor = allowed_levels(wk, p.nodes[n].gpu)[0]
        if p.nodes[n].gpu.power_levels[floor].power_cap_w < cap:
            new.set_level(i, floor)
    have: dict[int, list[int]] = defaultdict(list)
    for w, n, *_ in new.placements:
        have[w].append(n)
    guide = _Lowest(p, lowest)
    dead = _Dead()
    for w in sorted(p.options, key=lambda w: order_key(wl[w], w)):
        if len(have.get(w, ())) < wl[w].max_replicas:
            place_workload(st=new, w=w, dead=dead, guide=guide, existing=have.get(w, []))
    raise_levels(new)
    got, was = placed_work(new), placed_work(st)
    log.info("guided: lowest tier squeezed: placed work %d -> %d", was, got)
    return new if got > was else st


def residual(st: FleetState, budgets: _Budgets, workloads: list[int]) -> Residual:
    """What ``st`` leaves of the fleet, for the LP over ``workloads``."""
    free: dict[GroupKey, int] = defaultdict(int)
    for g in st.p.groups:
        if g.rep.node.state is NodeState.READY:
            free[budgets.key_of[g.index]] += st.group_free[g.index]
    return Residual(dict(free), dict(st.domain_w), dict(st.site_w), frozenset(workloads))
