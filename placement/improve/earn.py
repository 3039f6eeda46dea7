"""Moves that earn their place: make room for work the current placement leaves out (issue 15, item 6).

``earn(st, deadline, stop)`` improves a re-plan's state (the current placement repaired and
filled, ``construct.keep.keep_current``) in rounds of two phases while either keeps an action,
each phase given at most its share of the time left (``MAKE_WAY_SHARE``, ``PHASE_SHARE``):

* ``make_way`` (under a ``max_moves`` budget only): running workloads of low priority, the
  least placed work per GPU first, in turn; all of a victim's replicas are taken off and the
  most valuable workloads of higher priority that may use its power domains
  (``VICTIM_TARGETS``) are placed as the greedy places them, as many replicas as fit. Of a
  window of victims whose trades earn, the one that earns most is made (the window is
  ``MAKE_WAY_TRIALS`` over the victims, 1 to ``MAKE_WAY_WINDOW``: wide on small fleets, where
  the budget binds, one at a time on large ones, where time does). With
  moves priced and no budget, victims would move more replicas than a re-plan should for growth
  (docs/experiments/2026-12-06-make-way.md), so this phase does not run.
* ``add_targets``: one workload the state leaves out, or holds below ``max_replicas``, at a
  time; its replicas are added one by one and, where no candidate node has room, room is made
  on one (``room_on``):

  1. where the kernel finds watts short: the caps of whole-GPU replicas (of no higher
     priority) in the node's power domain go down to their lowest allowed level, the least
     placed work lost per watt freed first (a cap lowered in place is no move);
  2. then replicas of no higher priority are taken off the node, then off its power domain,
     the lowest priority first, then those that cost no move (not running there today), then
     the least placed work, until the replica fits; each workload taken from is placed again
     whole elsewhere (its rules kept) or, of lower priority than the target, runs fewer
     replicas or is left out (preempted: the target gained a replica on its node).

Each replica tries at most ``NODES_TRIED`` candidate nodes, likely cheapest first (a site or
rack its spread and site survival still want, no replica of higher priority there, the fewest
running replicas, the most free GPUs); of the first ``ROOMS_COMPARED`` where room can be made,
the one that costs least is made: placed work lost, each move counted at a typical running
replica's price (priced) or its whole work (under a budget, where moves are scarce). Of the
prefixes of a target's replicas that meet its rules, the one that earns most is kept where:

* moves are priced (``Problem.moves_priced``): the placed work it adds exceeds the price of the
  current replicas it moves (``Workload.move_price_per_replica``);
* a ``max_moves`` budget is set: it adds placed work and its moves fit what the budget has left;

and the kernel finds every disruption budget and upward-only preemption kept
(``state.disruption_short``); a victim's trade is kept on the same terms. Targets go most
valuable first (priority, then work per replica).
Every change goes through the rule kernel (``FleetState``); an action that fails is undone
whole. At the end the watts lowered caps left unused go back to higher levels
(``greedy.raise_levels``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from placement.construct.greedy import place_workload, raise_levels
from placement.core.candidates import Prepared
from placement.core.domain import SpreadLevel
from placement.core.energy import allowed_levels, replica_work
from placement.core.objective import throughput_pct, top_throughput_pct
from placement.core.state import FULL_MILLI, Fit, FleetState, Row, disruption_short, forced_nodes, level_at

log = logging.getLogger(__name__)

NODES_TRIED = 32  # candidate nodes a target tries to make room on
WATTS = ("domain_power", "site_power")  # the kernel's rules that lowering caps can help
ROOMS_COMPARED = 6  # rooms found on that many nodes are compared, the cheapest made
MOST_EVICTED = 8  # replicas taken off a node and its rack for one target replica
VICTIM_TARGETS = 20  # targets placed where a victim made way
MAKE_WAY_WINDOW = 8  # victims whose trades are compared at most, the one that earns most made
MAKE_WAY_TRIALS = 3000  # trades tried per round, about: the window is this over the victims (M: 8, L: 1)
PHASE_SHARE = 0.5  # of the time left, at most, for add_targets
MAKE_WAY_SHARE = 0.75  # of the time left, at most, for make_way (under a budget its trades earn most)


@dataclass(frozen=True)
class Action:
    """One kept action: ``workload`` gained ``replicas``; ``moved`` current replicas moved for it;
    ``work`` the placed work it added as kept (net of the caps it lowered and the work it
    preempted; the final ``raise_levels`` may add more)."""

    workload: int
    replicas: int
    moved: int
    work: int


def _row_work(st: FleetState, row: Row) -> int:
    """Placed work of one placement row, as ``objective.evaluate`` counts it."""
    w, n, _idx, milli, cap = row
    wk = st.p.problem.workloads[w]
    gpu = st.p.nodes[n].gpu
    fractional = milli < 1000 or wk.is_fractional
    return replica_work(wk, top_throughput_pct(gpu) if fractional else throughput_pct(gpu, cap))


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
        self.most: int | None = None  # tries at most, every phase and round (the deterministic mode)
        self.phase_end: float | None = None  # the running phase's share of the time ends
        self.tries = 0
        # a move counted at a typical running replica's price (priced) or its whole work (a budget)
        worth = sorted(
            self.wl[v].move_price_per_replica
            if self.priced
            else self.wl[v].priority * self.wl[v].work_milli * 100
            for v, _n in self.p.current
        )
        self.move_worth = worth[len(worth) // 2] if worth else 0
        self.in_domain: dict[tuple[str, str], list[int]] = {}
        for info in self.p.nodes:
            self.in_domain.setdefault(info.domain_key, []).append(info.index)
        # the current replicas a plan may move unforced: (workload, node, count)
        self.unforced = [
            (v, n, cur)
            for (v, n), cur in self.p.current.items()
            if self.wl[v].running and n not in self.forced.get(v, ())
        ]
        self._work: dict[Row, int] = {}  # placed work per row (a row's work depends on the row alone)
        self._domains: dict[int, set[tuple[str, str]]] = {}  # power domains a workload may use

    def late(self) -> bool:
        now = time.monotonic() if self.deadline is not None else 0.0
        return (
            (self.deadline is not None and now >= self.deadline)
            or (self.phase_end is not None and now >= self.phase_end)
            or (self.stop is not None and self.stop.is_set())
        )

    def spent(self) -> bool:
        """The deterministic mode's count of targets is used up."""
        return self.most is not None and self.tries >= self.most

    def held(self, w: int) -> list[int]:
        return list(self.st.nodes_of[w].elements())

    def row_work(self, row: Row) -> int:
        got = self._work.get(row)
        if got is None:
            got = self._work[row] = _row_work(self.st, row)
        return got

    def domain_rows(self, n: int) -> list[Row]:
        """The placements in node ``n``'s power domain, node by node."""
        rows_at = self.st.rows_at
        return [r for m in self.in_domain[self.p.nodes[n].domain_key] for r in rows_at[m].elements()]

    def moved(self) -> tuple[int, int]:
        """Unforced current replicas moved in the state: their count and their price."""
        nodes_of = self.st.nodes_of
        count = price = 0
        for v, n, cur in self.unforced:
            gone = cur - nodes_of[v][n]
            if gone > 0:
                count += gone
                price += gone * self.wl[v].move_price_per_replica
        return count, price

    def work(self) -> int:
        return sum(map(self.row_work, self.st.placements))

    def candidates(self, w: int, held: list[int]) -> list[tuple[int, tuple[int, ...], int]]:
        """(node, levels, per_gpu) of ``w``'s candidate nodes, cheapest room first: no replica of
        higher priority than ``w`` there, then the fewest current replicas, then the most free GPUs."""
        st = self.st
        prio = self.wl[w].priority
        top: dict[int, int] = {}
        running: Counter[int] = Counter()
        current = self.p.current
        out = []
        for o in self.p.options.get(w, ()):
            for f in o.fits:
                for n in self.p.groups[f.group].nodes:
                    if n not in top:
                        rows = st.rows_at[n]
                        top[n] = max((self.wl[r[0]].priority for r in rows), default=0)
                        running[n] = sum(k for r, k in rows.items() if (r[0], n) in current)
                    if top[n] <= prio:
                        out.append((n, f.levels, o.per_gpu))
        wk = self.wl[w]
        nodes = self.p.nodes
        level = wk.spread.level if wk.spread is not None else None
        by_site = wk.survivors_required > 0 or level is SpreadLevel.SITE
        sites = {nodes[n].site.name for n in held}
        domains = {nodes[n].domain_key for n in held}

        def fresh(n: int) -> tuple[bool, bool, bool]:  # spread and site survival want new places
            return (
                by_site and nodes[n].site.name in sites,
                level is SpreadLevel.POWER_DOMAIN and nodes[n].domain_key in domains,
                n in held,
            )

        out.sort(key=lambda c: (fresh(c[0]), top.get(c[0], 0), running[c[0]], -st.node_free[c[0]]))
        return out[:NODES_TRIED]

    def room_on(self, w: int, n: int, levels: tuple[int, ...], per_gpu: int) -> tuple[Fit, int, int] | None:
        """Make room for one replica of ``w`` on node ``n``: replicas of no higher priority taken off
        the node (then off its rack, for watts), those that cost no move and are worth least first,
        each placed again elsewhere or, of lower priority than ``w``, left out (preempted). Returns
        the fit with the replica added, the current replicas it moved and the placed work it lost
        (both estimates, to rank nodes); None with the state as it was."""
        st = self.st
        wk = self.wl[w]
        fit = st.fit_at(w, n, levels, per_gpu)
        if fit is not None:
            st.add(w, fit)
            return fit, 0, 0
        mark = st.mark()
        rows = [r for r in self.domain_rows(n) if r[0] != w]
        here = Counter((r[0], r[1]) for r in rows)

        def costs_move(r: Row) -> bool:
            return here[(r[0], r[1])] <= self.p.current.get((r[0], r[1]), 0)

        # on the node first (GPUs and watts), then elsewhere in its rack (watts); those that cost no
        # move first, then the least placed work
        rows.sort(key=lambda r: (r[1] != n, self.wl[r[0]].priority, costs_move(r), self.row_work(r)))
        rows = [r for r in rows if not self.wl[r[0]].pinned and self.wl[r[0]].priority <= wk.priority]
        evicted: list[int] = []
        moves = lost = 0
        rule = st.check(w, n, levels, None, ())
        if rule in WATTS:  # lower the rack's caps first (no move)
            fit, lost = self.lower_caps(w, n, levels, per_gpu, rows)
            if fit is None:  # the rows as they are now (their caps lowered), in the same order
                at = {(r[0], r[1], r[2]): r for r in self.domain_rows(n)}
                rows = [at[(r[0], r[1], r[2])] for r in rows if (r[0], r[1], r[2]) in at]
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
            kept = self.held(v)
            before = len(kept) + evicted.count(v)
            end = len(st.placements)
            place_workload(st, v, existing=kept)
            again = kept + [r[1] for r in st.placements[end:]]
            if self.wl[v].priority >= wk.priority:  # of no lower priority: all of it placed again
                if len(again) < before or st.workload_short(v, again) is not None:
                    st.undo(mark)
                    return None
                continue
            worth = self.wl[v].priority * self.wl[v].work_milli * 100  # one replica, full throughput
            if again and st.workload_short(v, again) is None:  # lower priority: fewer replicas of it
                lost += worth * max(0, before - len(again))
                continue
            for i in reversed(range(len(st.placements))):  # preempted: w, of higher priority, took its room
                row = st.placements[i]
                if row[0] == v:
                    moves += (v, row[1]) in self.p.current
                    lost += self.row_work(row)
                    st.remove(i)
            lost += worth * evicted.count(v)
        return fit, moves, lost

    def lower_caps(
        self, w: int, n: int, levels: tuple[int, ...], per_gpu: int, rows: list[Row]
    ) -> tuple[Fit | None, int]:
        """Whole-GPU replicas of ``rows`` put at their lowest allowed power level, one at a time, the
        least placed work lost per watt freed first, until one replica of ``w`` fits on ``n``; the
        fit (or None) and the placed work lost."""
        st = self.st
        steps: list[tuple[float, Row, int]] = []
        for row in rows:
            v, m, idx, milli, cap = row
            if milli < 1000:
                continue
            gpu = self.p.nodes[m].gpu
            allowed = allowed_levels(self.wl[v], gpu)
            now = level_at(gpu, cap)
            if not allowed or allowed[0] >= now:
                continue
            low = gpu.power_levels[allowed[0]]
            freed = len(idx) * (cap - low.power_cap_w)
            loss = replica_work(self.wl[v], gpu.power_levels[now].relative_throughput_pct) - replica_work(
                self.wl[v], low.relative_throughput_pct
            )
            steps.append((loss / max(1, freed), row, allowed[0]))
        steps.sort(key=lambda x: x[0])
        lost = 0
        for _ratio, row, level in steps:
            was = self.row_work(row)
            i = st.placements.index(row)
            st.set_level(i, level)
            lost += was - self.row_work(st.placements[i])
            fit = st.fit_at(w, n, levels, per_gpu)
            if fit is not None:
                return fit, lost
        return None, lost

    def cheapest_room(self, w: int, held: list[int]) -> Fit | None:
        """Room for one replica of ``w`` on the candidate node where it costs least (fewest moves,
        then least placed work lost), made; None where no candidate has any."""
        st = self.st
        best: tuple[tuple[int, int], int, tuple[int, ...], int] | None = None
        found = 0
        for n, levels, per_gpu in self.candidates(w, held):
            if self.late():
                return None
            mark = st.mark()
            got = self.room_on(w, n, levels, per_gpu)
            if got is None:
                continue
            st.undo(mark)
            cost = (got[2] + got[1] * self.move_worth, got[1])
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

    def targets(self) -> list[int]:
        """Workloads below ``max_replicas``, the most valuable first (priority, then work per replica)."""
        wl, nodes_of = self.wl, self.st.nodes_of
        return sorted(
            (w for w in self.p.options if nodes_of[w].total() < wl[w].max_replicas),
            key=lambda w: (-wl[w].priority, -wl[w].work_milli, w),
        )

    def add_targets(self) -> int:
        """Each target in turn (``try_target``) while it gains; the actions kept."""
        kept = 0
        for w in self.targets():
            if self.late() or self.spent() or self.left == 0:
                break
            while not (self.late() or self.spent()) and self.st.nodes_of[w].total() < self.wl[w].max_replicas:
                self.tries += 1
                act = self.try_target(w)
                if act is None:
                    break
                self.actions.append(act)
                kept += 1
        return kept

    def victims(self) -> list[int]:
        """Running workloads that may make way, the least placed work per GPU first, the lowest
        priority first."""
        wl, st = self.wl, self.st

        def density(v: int) -> float:
            rows = self.rows_of(v)
            gpus = sum(len(r[2]) if r[3] >= FULL_MILLI else r[3] / FULL_MILLI for r in rows)
            return sum(map(self.row_work, rows)) / max(gpus, 1e-9)

        got = [v for v in range(len(wl)) if wl[v].running and not wl[v].pinned and st.nodes_of[v]]
        return sorted(got, key=lambda v: (wl[v].priority, density(v), v))

    def rows_of(self, v: int) -> list[Row]:
        rows_at = self.st.rows_at
        return [r for n in self.st.nodes_of[v] for r in rows_at[n].elements() if r[0] == v]

    def make_way(self) -> int:
        """Victims in turn: of the next ``width`` whose trade would be kept (``try_victim``), the one
        that earns most is made; those that would not earn are passed over for this round. ``width``
        is ``MAKE_WAY_TRIALS`` shared among the victims, 1 to ``MAKE_WAY_WINDOW``: a count, so that
        the plan does not depend on the clock's speed. The victims kept."""
        kept = 0
        pool = self.victims()
        width = max(1, min(MAKE_WAY_WINDOW, MAKE_WAY_TRIALS // max(1, len(pool))))
        i = 0
        while i < len(pool) and not (self.late() or self.spent() or self.left == 0):
            best: tuple[int, int] | None = None  # (net, victim) of the best trade in the window
            passed: list[int] = []
            j = i
            while (
                j < len(pool) and len(passed) < width and not (self.late() or self.spent() or self.left == 0)
            ):
                v = pool[j]
                j += 1
                if width == 1:  # the first that earns is the one made: made at once, not tried twice
                    if self.st.nodes_of[v] and self.try_victim(v, keep=True) is not None:
                        kept += 1
                    continue
                got = self.try_victim(v, keep=False) if self.st.nodes_of[v] else None
                if got is not None:
                    passed.append(v)
                    if best is None or got[0] > best[0]:
                        best = (got[0], v)
            if best is None:
                break
            if self.try_victim(best[1], keep=True) is not None:
                kept += 1
            pool[i:j] = [v for v in passed if v != best[1]]  # tried again in the next window
        return kept

    def try_victim(self, v: int, keep: bool) -> tuple[int, int] | None:
        """Take every replica of ``v`` off and place the most valuable targets of higher priority that
        may use its power domains (``VICTIM_TARGETS`` of them, each as many replicas as fit). Where it
        earns as ``try_target``'s prefixes do: (what it earns, its moves), the trade made with
        ``keep``, else undone; None (undone) where it does not."""
        st, wl = self.st, self.wl
        doms = {self.p.nodes[n].domain_key for n in st.nodes_of[v]}
        prio = wl[v].priority
        pending = [t for t in self.targets() if wl[t].priority > prio and self.domains_of(t) & doms]
        if not pending:
            return None
        self.tries += 1
        moves0, price0 = self.moved()
        work0 = self.work()
        mark = st.mark()
        for row in self.rows_of(v):
            st.remove(st.placements.index(row))
        added = []
        for t in pending[:VICTIM_TARGETS]:
            before = st.nodes_of[t].total()
            place_workload(st, t, existing=self.held(t))
            if st.nodes_of[t].total() > before:
                added.append((t, st.nodes_of[t].total() - before))
        moves1, price1 = self.moved()
        moves, work = moves1 - moves0, self.work() - work0
        net = work - (price1 - price0) if self.priced else work
        if (
            not added
            or net <= 0
            or (self.left is not None and moves > self.left)
            or (moves and disruption_short(self.p, st.placements, self.forced) is not None)
        ):
            st.undo(mark)
            return None
        if not keep:
            st.undo(mark)
            return net, moves
        if self.left is not None:
            self.left -= moves
        for i, (t, k) in enumerate(added):  # the moves and the work are the victim's, on the first
            self.actions.append(Action(t, k, moves if i == 0 else 0, work if i == 0 else 0))
        return net, moves

    def domains_of(self, w: int) -> set[tuple[str, str]]:
        got = self._domains.get(w)
        if got is None:
            nodes, groups = self.p.nodes, self.p.groups
            got = self._domains[w] = {
                nodes[n].domain_key
                for o in self.p.options.get(w, ())
                for f in o.fits
                for n in groups[f.group].nodes
            }
        return got

    def run(self) -> list[Action]:
        """Rounds of ``make_way`` (under a budget) then ``add_targets`` while either keeps an action,
        each phase given at most its share of the time left (counted: ``most`` tries in all)."""
        st = self.st
        st.mark()
        # victims make way only under a budget: with moves priced their trades would move more
        # replicas than growth should (docs/experiments/2026-12-06-make-way.md)
        phases = [(self.add_targets, PHASE_SHARE)]
        if self.left is not None:
            phases.insert(0, (self.make_way, MAKE_WAY_SHARE))
        while not (self.late() or self.left == 0):
            kept = 0
            for phase, share in phases:
                self.phase_end = None
                if self.deadline is not None:
                    now = time.monotonic()
                    self.phase_end = now + share * (self.deadline - now)
                kept += phase()
                self.phase_end = None
            if not kept:
                break
        if self.actions and not self.late():
            raise_levels(st)  # the watts the lowered caps left unused
        st.forget()
        return self.actions


def earn(
    st: FleetState,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    most: int | None = None,
) -> list[Action]:
    """Improve a re-plan's state in place (module docstring); the kept actions, in order. It ends
    at ``deadline`` (monotonic seconds) or, with ``most``, after that many tries in all (the
    deterministic mode: the same input gives the same plan whatever the clock)."""
    if not any(w.running for w in st.p.problem.workloads):
        return []
    earner = _Earner(st, deadline, stop)
    earner.most = most
    got = earner.run()
    log.info(
        "earn: %d actions, %d replicas added, %d moves, %+d placed work",
        len(got),
        sum(a.replicas for a in got),
        sum(a.moved for a in got),
        sum(a.work for a in got),
    )
    return got
