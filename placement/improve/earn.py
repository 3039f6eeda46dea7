"""Moves that earn their place: make room for work the current placement leaves out (issue 15, item 6).

``earn(st, deadline, stop)`` improves a re-plan's state (the current placement repaired and filled,
``construct.keep.keep_current``) one action at a time. An action takes one workload the state
leaves out (or holds below ``max_replicas``, one replica more) and places it, where no node has
room, by making room on one of its candidate nodes: replicas there are taken off, cheapest
first (a replica not running there today costs no move; a current one costs its move), then
replicas elsewhere in its power domain for their watts, until the workload fits, and each is placed again on another node (its rules kept); a workload of
lower priority that cannot be placed again is left out (preempted: the target gained a replica
on its node). An action is kept where:

* moves are priced (``Problem.moves_priced``): the placed work it adds exceeds the price of
  the current replicas it moves (``Workload.move_price_per_replica``);
* a ``max_moves`` budget is set: it adds placed work and its moves fit what the budget has
  left; the per-workload, per-site and per-domain budgets and upward-only preemption are
  checked by the kernel (``state.disruption_short``) after every kept action.

Targets go most valuable first (priority, then work per replica); each replica tries at most
``NODES_TRIED`` nodes, likely cheapest first (no replica of higher priority, the fewest
running replicas, the most free GPUs), and of the first ``ROOMS_COMPARED`` where room can be
made, takes the one that moves fewest current replicas and loses least placed work. Every placement goes
through the rule kernel (``FleetState``); an action that fails any rule is undone whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from placement.construct.greedy import place_workload
from placement.core.candidates import Prepared
from placement.core.energy import replica_work
from placement.core.state import Fit, FleetState, disruption_short, forced_nodes

log = logging.getLogger(__name__)

NODES_TRIED = 32  # candidate nodes a target tries to make room on
ROOMS_COMPARED = 6  # rooms found on that many nodes are compared, the cheapest made
MOST_EVICTED = 8  # replicas taken off a node and its rack for one target replica


@dataclass(frozen=True)
class Action:
    """One kept action: ``workload`` gained ``replicas``; ``moved`` current replicas moved for it;
    ``work`` the placed work it added (net of the moved replicas' level changes)."""

    workload: int
    replicas: int
    moved: int
    work: int


def _row_work(st: FleetState, row: tuple[int, int, tuple[int, ...], int, int]) -> int:
    w, n, _idx, milli, cap = row
    wk = st.p.problem.workloads[w]
    levels = st.p.nodes[n].gpu.power_levels
    if milli < 1000 or wk.is_fractional:
        return replica_work(wk, levels[-1].relative_throughput_pct if levels else 0)
    for lv in levels:
        if lv.power_cap_w == cap:
            return replica_work(wk, lv.relative_throughput_pct)
    return 0


class _Earner:
    def __init__(self, st: FleetState, deadline: float | None, stop: threading.Event | None) -> None:
        self.st = st
        self.p: Prepared = st.p
        self.deadline = deadline
        self.stop = stop
        self.wl = self.p.problem.workloads
        self.priced = self.p.problem.moves_priced
        self.left = self.p.problem.options.max_moves  # None: moves priced, no count limit
        self.forced = forced_nodes(self.p)
        self.actions: list[Action] = []
        self.in_domain: dict[tuple[str, str], set[int]] = {}
        for info in self.p.nodes:
            self.in_domain.setdefault(info.domain_key, set()).add(info.index)

    def late(self) -> bool:
        return (self.deadline is not None and time.monotonic() >= self.deadline) or (
            self.stop is not None and self.stop.is_set()
        )

    def held(self, w: int) -> list[int]:
        return [n for v, n, *_ in self.st.placements if v == w]

    def moved(self) -> tuple[int, int]:
        """Unforced current replicas moved in the state: their count and their price."""
        planned: Counter[tuple[int, int]] = Counter((v, n) for v, n, *_ in self.st.placements)
        count = price = 0
        for (v, n), cur in self.p.current.items():
            if self.wl[v].running and n not in self.forced.get(v, ()):
                gone = max(0, cur - planned[(v, n)])
                count += gone
                price += gone * self.wl[v].move_price_per_replica
        return count, price

    def work(self) -> int:
        return sum(_row_work(self.st, r) for r in self.st.placements)

    def candidates(self, w: int, held: list[int]) -> list[tuple[int, tuple[int, ...], int]]:
        """(node, levels, per_gpu) of ``w``'s candidate nodes, cheapest room first: no replica of
        higher priority than ``w`` there, then the fewest current replicas, then the most free GPUs."""
        st = self.st
        prio = self.wl[w].priority
        top: dict[int, int] = {}
        running: Counter[int] = Counter()
        for v, n, *_ in st.placements:
            top[n] = max(top.get(n, 0), self.wl[v].priority)
            running[n] += (v, n) in self.p.current
        out = [
            (n, f.levels, o.per_gpu)
            for o in self.p.options.get(w, ())
            for f in o.fits
            for n in self.p.groups[f.group].nodes
            if top.get(n, 0) <= prio
        ]
        out.sort(key=lambda c: (c[0] in held, top.get(c[0], 0), running[c[0]], -st.node_free[c[0]]))
        return out[:NODES_TRIED]

    def room_on(self, w: int, n: int, levels: tuple[int, ...], per_gpu: int) -> tuple[Fit, int, int] | None:
        """Make room for one replica of ``w`` on node ``n``: replicas of no higher priority taken off
        the node (then off its rack, for watts), those that cost no move and are worth least first,
        each placed again elsewhere or, of lower priority than ``w``, left out (preempted). Returns
        the fit with the replica added, the current replicas it moved and the placed work it lost
        (both estimates, to rank nodes); None with the state as it was."""
        st = self.st
        wk = self.wl[w]
        mark = st.mark()
        dom = self.in_domain[self.p.nodes[n].domain_key]
        rows = [r for r in st.placements if r[1] in dom and r[0] != w]
        here = Counter((r[0], r[1]) for r in rows)

        def costs_move(r: tuple[int, int, tuple[int, ...], int, int]) -> bool:
            return here[(r[0], r[1])] <= self.p.current.get((r[0], r[1]), 0)

        # on the node first (GPUs and watts), then elsewhere in its rack (watts); those that cost no
        # move first, then the least placed work
        rows.sort(key=lambda r: (r[1] != n, costs_move(r), _row_work(st, r)))
        rows = [r for r in rows if not self.wl[r[0]].pinned and self.wl[r[0]].priority <= wk.priority]
        evicted: list[int] = []
        moves = lost = 0
        fit = st.fit_at(w, n, levels, per_gpu)
        for row in rows[:MOST_EVICTED]:
            if fit is not None:
                break
            moves += costs_move(row)
            here[(row[0], row[1])] -= 1
            st.remove(st.placements.index(row))
            evicted.append(row[0])
            fit = st.fit_at(w, n, levels, per_gpu)
        if fit is None:
            st.undo(mark)
            return None
        st.add(w, fit)
        for v in dict.fromkeys(evicted):
            place_workload(st, v, existing=self.held(v))
            again = self.held(v)
            if again and st.workload_short(v, again) is None:
                continue
            if self.wl[v].priority >= wk.priority:
                st.undo(mark)
                return None
            for i in reversed(range(len(st.placements))):  # preempted: w, of higher priority, took its room
                row = st.placements[i]
                if row[0] == v:
                    moves += (v, row[1]) in self.p.current
                    lost += _row_work(st, row)
                    st.remove(i)
            lost += sum(self.wl[v].priority * self.wl[v].work_milli * 100 for x in evicted if x == v)
        return fit, moves, lost

    def cheapest_room(self, w: int, held: list[int]) -> Fit | None:
        """Room for one replica of ``w`` on the candidate node where it costs least (fewest moves,
        then least placed work lost), made; None where no candidate has any."""
        st = self.st
        best: tuple[tuple[int, int], int, tuple[int, ...], int] | None = None
        found = 0
        for n, levels, per_gpu in self.candidates(w, held):
            mark = st.mark()
            got = self.room_on(w, n, levels, per_gpu)
            if got is None:
                continue
            st.undo(mark)
            cost = (got[1], got[2])
            if best is None or cost < best[0]:
                best = (cost, n, levels, per_gpu)
            found += 1
            if cost == (0, 0) or found >= ROOMS_COMPARED:
                break
        if best is None:
            return None
        made = self.room_on(w, best[1], best[2], best[3])
        return made[0] if made is not None else None

    def try_target(self, w: int) -> Action | None:
        """Replicas of ``w`` added one by one (room made where none is free) up to ``max_replicas``;
        of the prefixes that meet its rules, the one that earns most is kept, if it earns."""
        st = self.st
        wk = self.wl[w]
        held = self.held(w)
        start = len(held)
        if start >= wk.max_replicas:
            return None
        moves0, price0 = self.moved()
        work0 = self.work()
        mark = st.mark()
        best: tuple[int, int, int, int] | None = None  # (net, journal mark, moves, work)
        while len(held) < wk.max_replicas and not self.late():
            got = self.cheapest_room(w, held)
            if got is None:
                break
            held.append(got.node)
            if len(held) < wk.min_replicas or st.workload_short(w, held) is not None:
                continue
            moves1, price1 = self.moved()
            moves, work = moves1 - moves0, self.work() - work0
            if self.left is not None and moves > self.left:
                break
            # priced: the work must pay for the moves; with a budget: any gain the budget affords
            net = work - (price1 - price0) if self.priced else work
            if (
                net > 0
                and (best is None or net > best[0])
                and (not moves or disruption_short(self.p, st.placements, self.forced) is None)
            ):
                best = (net, st.mark(), moves, work)
        if best is None:
            st.undo(mark)
            return None
        st.undo(best[1])
        if self.left is not None:
            self.left -= best[2]
        return Action(w, len(self.held(w)) - start, best[2], best[3])

    def run(self) -> list[Action]:
        st = self.st
        wl = self.wl
        st.mark()
        order = sorted(self.p.options, key=lambda w: (-wl[w].priority, -wl[w].work_milli, w))
        for w in order:
            if self.late() or self.left == 0:
                break
            while not self.late() and len(self.held(w)) < wl[w].max_replicas:
                act = self.try_target(w)
                if act is None:
                    break
                self.actions.append(act)
        st.forget()
        return self.actions


def earn(st: FleetState, deadline: float | None = None, stop: threading.Event | None = None) -> list[Action]:
    """Improve a re-plan's state in place (module docstring); the kept actions, in order."""
    if not any(w.running for w in st.p.problem.workloads):
        return []
    got = _Earner(st, deadline, stop).run()
    log.info(
        "earn: %d actions, %d replicas added, %d moves, %+d placed work",
        len(got),
        sum(a.replicas for a in got),
        sum(a.moved for a in got),
        sum(a.work for a in got),
    )
    return got
