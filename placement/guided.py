"""The LP-guided greedy: round the node-group LP's solution into a plan.

``placement.bound.group_lp`` says, per class of alike workloads, how many GPU
thousandths to run on each group of alike nodes and at which power level. Where power
caps bind, that solution runs many GPUs below their top level (more GPUs under the
same watts: throughput grows about with the square root of the cap), which the
greedy and the heuristics, best level first, never do.

``guided(prepared, lp)`` turns the solution into budgets per (class, node group, level)
and runs the greedy's own ``place_workload`` (every hard rule through ``FleetState``,
all or nothing per workload) with a guide that lets a replica go only where its class
has budget left, at or below the budget's level. A replica may take a budget down to
``ROUND_UP`` of one replica's thousandths (rounding up: the fleet's own checks, not the
budget, decide whether it fits). What the budgets leave unplaced is then filled by the
plain greedy: first the workloads that already run get more replicas (up to
max_replicas), then the workloads left out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from placement.bound import GroupKey, GroupLP
from placement.candidates import CellOption, Prepared
from placement.decode import FleetState
from placement.greedy import _Dead, order_key, place_pinned, place_workload

log = logging.getLogger(__name__)

ROUND_UP = 0.5  # a replica may use a budget holding at least this share of its thousandths
_CHECK_EVERY = 32


class _Budgets:
    """Budgets per (class, LP group key) and level, in GPU thousandths; implements ``greedy.Guide``."""

    def __init__(self, prepared: Prepared, lp: GroupLP) -> None:
        self.p = prepared
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
        return ROUND_UP * self.p.problem.workloads[w].work_milli

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
) -> FleetState:
    """The LP-guided plan (module docstring): a valid plan, all or nothing per workload."""
    t0 = time.monotonic()
    wl = prepared.problem.workloads
    st = FleetState(prepared)
    place_pinned(st)
    budgets = _Budgets(prepared, lp)
    order = sorted(prepared.options, key=lambda w: order_key(wl[w], w))

    def late(i: int) -> bool:
        if i % _CHECK_EVERY:
            return False
        return (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set())

    for i, w in enumerate(order):
        if late(i):
            log.info("guided stopped after %d of %d workloads", i, len(order))
            return st
        if w in budgets.class_of and place_workload(st, w, None, budgets):
            budgets.commit(w)
    guided_n = len(st.placements)
    # top up: workloads placed below max_replicas get more where the plain greedy finds room
    nodes_of: dict[int, list[int]] = defaultdict(list)
    for w, n, *_ in st.placements:
        nodes_of[w].append(n)
    dead = _Dead()
    for i, w in enumerate(order):
        if late(i):
            return st
        have = nodes_of.get(w)
        if have and len(have) < wl[w].max_replicas:
            place_workload(st, w, dead, None, have)
    topped = len(st.placements)
    # fill: the workloads left out
    for i, w in enumerate(order):
        if late(i):
            return st
        if w not in nodes_of:
            place_workload(st, w, dead)
    log.info(
        "guided: %d replicas by the LP's budgets, %d topped up, %d filled (%.2f s)",
        guided_n,
        topped - guided_n,
        len(st.placements) - topped,
        time.monotonic() - t0,
    )
    return st
