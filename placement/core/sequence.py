"""The migration sequence: from the current placement to a plan, one safe step at a time (issue 15, item 5).

``migration(problem, plan) -> Migration`` orders the steps that turn the running replicas into
the plan's placements: START a replica on a node's GPUs at a cap, WAIT_READY, STOP a replica,
SET_CAP of a replica kept in place. It is a policy over data: it reads the problem and the
plan, never a solver. The transient verifier (``placement.core.verify_sequence``) replays the
steps independently.

Notations
---------
* running: the current replicas on nodes that exist and are not DOWN (a DRAINING node's
  replicas run until stopped); one on a DOWN or unknown node is down already and takes no step.
* kept: a running replica the plan places on the same node and the same GPUs (its cap may
  change in place); to start: a placement not kept; to stop: a running replica not kept.
* available replicas of a workload w: its ready ones (a started replica counts after WAIT_READY).
* levels of w: ``start_w`` (running), ``planned_w``; no-break level ``nb_w = min(start_w,
  planned_w)``; floor ``floor_w = min(start_w, planned_w, max(0, min_replicas -
  max_unavailable))``, ``max_unavailable`` None counting as 0.
* spread and survival of a workload the plan places: distinct entities of its spread level
  ``>= min(min_distinct, distinct at the start)``; ``r - max_s r_s >= min(survivors_required,
  its value at the start)``.
* headroom, as the verifier reads it: a whole GPU is free, a shared one has the thousandths and
  the memory (rules 3, 4); tracked host CPU and memory (rule 5); every power domain and site
  within ``L = max(usable_power_w, its draw at the start)`` under rule 7's arithmetic (a rack the
  current placement overdraws may not draw more than it does; an empty node is off).

The order, numbered as the code cites it
----------------------------------------
S1. Lower caps in place (SET_CAP): they only free watts.
S2. Stops the plan drops (a workload above its planned count) while the workload stays at
    ``nb_w`` with its spread and survival, the stop that frees the most useful room first.
S3. Make-before-break: a start that fits the headroom of the state: START, WAIT_READY, then
    stops of its workload while it stays at ``nb_w`` (the old copy that frees the most useful
    room first). Moves go before pure additions (a workload with nothing to stop), so that an
    addition never takes the room a move passes through. A start that does not fit waits on
    what it is short of (its node; a power domain or site, keyed by the watts it needs) and is
    tried again when a stop frees room there; a full sweep runs before S4.
S4. Stuck: break-before-make. A pending stop at what a waiting start is short of, of a
    workload that stays at ``floor_w`` with its spread and survival, after which the start
    fits: STOP it, then go on at S3 (a ``Downtime`` within budget).
S5. Still stuck: the waiting starts are blocked (rule, where, numbers) and the migration is not
    safe. The fallback stops first: the most useful pending stop at what the first blocked
    start is short of, affordable ones first, whatever it takes down (a ``Downtime`` out of
    budget); then back to S3.
S6. The stops left (each keeps its workload at or above the plan), then raise caps in place.

Completeness: once every stop is made, the state is the plan's kept replicas at caps no higher
than the plan's plus the plan's started ones, so every remaining start and raise fits (draw is
monotone in the replicas and caps; the plan passed the verifier). S5 therefore always ends.

"Most useful room": stops rank by (their node is not READY, starts waiting for its node, for
its power domain, for its site, watts freed). Accounting is incremental: a step touches one
node, its power domain and its site, and a waiting start is retried only when room frees where
it waits, so thousands of moves on a fleet of 30,000 GPUs take seconds.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from placement.core.domain import (
    BlockedMove,
    Downtime,
    GpuType,
    Migration,
    MigrationStep,
    Node,
    NodeState,
    Plan,
    PowerPeak,
    Problem,
    SpreadLevel,
    StepKind,
    current_cap_w,
    memory_milli_gib,
)

log = logging.getLogger(__name__)

FULL_MILLI = 1000
_CANDIDATES = 64  # stops tried per power domain or site a start is short of, in S4 / S5
_GPU_RULES = ("gpu_count", "gpu_share", "gpu_memory")
_KEY_RANK = {"node": 0, "domain": 1, "site": 2}


@dataclass
class _Replica:
    rid: int
    w: int  # workload index
    node: str
    gpus: tuple[int, ...]  # sorted
    cap_w: int  # per GPU
    milli: int  # FULL_MILLI for whole-GPU replicas
    mem: int  # milli-GiB it takes of a shared GPU (fractional only)


@dataclass
class _Gpu:
    whole: list[int] = field(default_factory=list)  # replica ids holding it whole
    shared: list[int] = field(default_factory=list)  # fractional replica ids on it
    milli: int = 0
    mem: int = 0


@dataclass(frozen=True)
class _Short:
    """What a start is short of, and the key it waits on."""

    rule: str
    where: str
    requested: float
    available: float
    unit: str
    message: str
    key: tuple[str, str]  # ("node" | "domain" | "site", name)
    need_w: int = 0  # watts the start adds (power keys)


_NODE = _Short("", "", 0, 0, "", "", ("node", ""))


class _State:
    """Placement of an intermediate state with incremental GPU, host and power accounting."""

    def __init__(self, problem: Problem) -> None:
        fleet = problem.fleet
        self.nodes: dict[str, Node] = {n.name: n for n in fleet.nodes}
        types = {g.name: g for g in fleet.gpu_types}
        self.gpu_type: dict[str, GpuType] = {n.name: types[n.gpu_type] for n in fleet.nodes}
        self.domain_site = {d.name: d.site for d in fleet.power_domains}
        self.dom_usable = {d.name: d.usable_power_w for d in fleet.power_domains}
        self.site_usable = {s.name: s.usable_power_w for s in fleet.sites}
        self.workloads = problem.workloads
        self.reps: dict[int, _Replica] = {}
        self.gpus: dict[str, dict[int, _Gpu]] = defaultdict(dict)
        self.on: Counter[str] = Counter()  # replicas per node
        self.extra_w: Counter[str] = Counter()  # per node: sum over busy GPUs of draw - idle
        self.cpu: Counter[str] = Counter()
        self.mem: Counter[str] = Counter()
        self.dom_w: Counter[str] = Counter()
        self.site_w: Counter[str] = Counter()
        self.dom_limit: dict[str, int] = {}
        self.site_limit: dict[str, int] = {}
        self.cpu_limit: dict[str, int] = {}
        self.mem_limit: dict[str, int] = {}

    def freeze_limits(self) -> None:
        """The limits of every intermediate state: the capacity, or the start's use where higher."""
        self.dom_limit = {d: max(u, self.dom_w[d]) for d, u in self.dom_usable.items()}
        self.site_limit = {s: max(u, self.site_w[s]) for s, u in self.site_usable.items()}
        for name, n in self.nodes.items():
            self.cpu_limit[name] = max(n.cpu_milli, self.cpu[name]) if n.cpu_milli > 0 else 0
            self.mem_limit[name] = max(n.host_memory_mib, self.mem[name]) if n.host_memory_mib > 0 else 0

    # ----------------------------------------------------------------- rule 7
    def _gpu_extra(self, gpu: GpuType, g: _Gpu) -> int:
        if g.shared:
            return gpu.max_power_w - gpu.idle_power_w
        if g.whole:
            return max(self.reps[r].cap_w for r in g.whole) - gpu.idle_power_w
        return 0

    def node_w(self, name: str) -> int:
        if not self.on[name]:
            return 0
        n = self.nodes[name]
        return n.host_power_w + n.gpu_count * self.gpu_type[name].idle_power_w + self.extra_w[name]

    def apply(self, rep: _Replica, sign: int) -> int:
        """Add (+1) or remove (-1) a replica; returns the change of its node's draw in watts."""
        name = rep.node
        node = self.nodes[name]
        gpu = self.gpu_type[name]
        before = self.node_w(name)
        per_node = self.gpus[name]
        if sign > 0:
            self.reps[rep.rid] = rep
        for idx in rep.gpus:
            g = per_node.get(idx)
            if g is None:
                g = per_node[idx] = _Gpu()
            old = self._gpu_extra(gpu, g)
            if rep.milli == FULL_MILLI:
                if sign > 0:
                    g.whole.append(rep.rid)
                else:
                    g.whole.remove(rep.rid)
            else:
                if sign > 0:
                    g.shared.append(rep.rid)
                else:
                    g.shared.remove(rep.rid)
                g.milli += sign * rep.milli
                g.mem += sign * rep.mem
            self.extra_w[name] += self._gpu_extra(gpu, g) - old
        if sign < 0:
            del self.reps[rep.rid]
        wk = self.workloads[rep.w]
        self.on[name] += sign
        self.cpu[name] += sign * wk.cpu_milli
        self.mem[name] += sign * wk.host_memory_mib
        delta = self.node_w(name) - before
        self.dom_w[node.power_domain] += delta
        self.site_w[node.site] += delta
        return delta

    def set_cap(self, rep: _Replica, cap_w: int) -> None:
        self.apply(rep, -1)
        rep.cap_w = cap_w
        self.apply(rep, +1)

    # --------------------------------------------------------------- headroom
    def short(self, rep: _Replica) -> _Short | None:
        """Why ``rep`` does not fit the state now (None: it fits): GPUs, host, domain, site."""
        name = rep.node
        node = self.nodes[name]
        gpu = self.gpu_type[name]
        wk = self.workloads[rep.w]
        key = ("node", name)
        per_node = self.gpus.get(name, {})
        for idx in rep.gpus:
            g = per_node.get(idx)
            if g is None:
                continue
            where = f"{name}/gpu{idx}"
            if rep.milli == FULL_MILLI and (g.whole or g.shared):
                held = self._holders(g.whole + g.shared)
                return _Short(
                    "gpu_count", where, 1, 0, "GPUs", f"GPU {idx} of node {name} is held by {held}", key
                )
            if rep.milli < FULL_MILLI:
                if g.whole:
                    held = self._holders(g.whole)
                    return _Short(
                        "gpu_share",
                        where,
                        rep.milli,
                        0,
                        "milli-GPU",
                        f"GPU {idx} of node {name} is held whole by {held}",
                        key,
                    )
                if g.milli + rep.milli > FULL_MILLI:
                    left = FULL_MILLI - g.milli
                    return _Short(
                        "gpu_share",
                        where,
                        rep.milli,
                        left,
                        "milli-GPU",
                        f"GPU {idx} of node {name} has {left} milli free, the start needs {rep.milli}",
                        key,
                    )
                cap = memory_milli_gib(gpu.memory_gib)
                if g.mem + rep.mem > cap:
                    left_gib = (cap - g.mem) / 1000
                    return _Short(
                        "gpu_memory",
                        where,
                        rep.mem / 1000,
                        left_gib,
                        "GiB",
                        f"GPU {idx} of node {name} has {left_gib:g} GiB free, the start needs {rep.mem / 1000:g}",
                        key,
                    )
        for what, used, limit, ask, unit in (
            ("CPU", self.cpu[name], self.cpu_limit.get(name, 0), wk.cpu_milli, "mCPU"),
            ("host memory", self.mem[name], self.mem_limit.get(name, 0), wk.host_memory_mib, "MiB"),
        ):
            if limit > 0 and used + ask > limit:
                return _Short(
                    "host_resources",
                    name,
                    ask,
                    limit - used,
                    unit,
                    f"node {name} has {limit - used} {unit} of {what} free, the start needs {ask}",
                    key,
                )
        delta = self.added_w(rep)
        dom_after, site_after = self.dom_w[node.power_domain] + delta, self.site_w[node.site] + delta
        dom_limit, site_limit = self.dom_limit[node.power_domain], self.site_limit[node.site]
        if dom_after > dom_limit:
            left = dom_limit - (dom_after - delta)
            return _Short(
                "domain_power",
                f"{node.site}/{node.power_domain}",
                delta,
                left,
                "W",
                f"power domain {node.power_domain} in site {node.site} has {left} W of headroom "
                f"(usable {self.dom_usable[node.power_domain]} W), the start needs {delta} W",
                ("domain", node.power_domain),
                delta,
            )
        if site_after > site_limit:
            left = site_limit - (site_after - delta)
            return _Short(
                "site_power",
                node.site,
                delta,
                left,
                "W",
                f"site {node.site} has {left} W of headroom (usable {self.site_usable[node.site]} W), "
                f"the start needs {delta} W",
                ("site", node.site),
                delta,
            )
        return None

    def added_w(self, rep: _Replica) -> int:
        """Rule 7: watts a start adds to its node, its GPUs being free or shareable (checked before)."""
        name = rep.node
        gpu = self.gpu_type[name]
        per_node = self.gpus.get(name, {})
        if self.on[name]:
            watts = 0
        else:
            node = self.nodes[name]
            watts = node.host_power_w + node.gpu_count * gpu.idle_power_w
        if rep.milli == FULL_MILLI:
            return watts + len(rep.gpus) * (rep.cap_w - gpu.idle_power_w)
        for idx in rep.gpus:
            g = per_node.get(idx)
            if g is None or not g.shared:
                watts += gpu.max_power_w - gpu.idle_power_w
        return watts

    def _holders(self, rids: list[int]) -> str:
        names = sorted({self.workloads[self.reps[r].w].name for r in rids[:3]})
        return ", ".join(names) + (f" and {len(rids) - 3} more" if len(rids) > 3 else "")


class _Builder:
    def __init__(self, problem: Problem, plan: Plan) -> None:
        self.problem = problem
        self.st = _State(problem)
        st = self.st
        wls = problem.workloads
        self.windex = {w.name: i for i, w in enumerate(wls)}
        self.steps: list[MigrationStep] = []
        self.blocked: list[BlockedMove] = []
        self.blocked_ids: set[int] = set()
        self.downtime: list[Downtime] = []
        self.open_down: dict[int, deque[int]] = defaultdict(deque)  # workload -> open downtime entries
        self.down_ok: list[bool] = []
        # per workload: ready replicas, per site, per spread entity
        self.count = [0] * len(wls)
        self.per_site: list[Counter[str]] = [Counter() for _ in wls]
        self.per_entity: list[Counter[str]] = [Counter() for _ in wls]
        self.rid = 0
        # ------------------------------------------------------------ the start state
        running: dict[tuple[int, str, tuple[int, ...]], list[_Replica]] = defaultdict(list)
        for i, w in enumerate(wls):
            for cr in w.current:
                node = st.nodes.get(cr.node)
                if node is None or node.state is NodeState.DOWN:
                    continue
                gpu = st.gpu_type[node.name]
                rep = self._new(i, node.name, cr.gpu_indices, current_cap_w(w, cr, gpu))
                st.apply(rep, +1)
                self._ready(rep, +1)
                running[(i, node.name, rep.gpus)].append(rep)
        st.freeze_limits()
        self.start_count = list(self.count)
        self.start_dom = dict(st.dom_w)
        self.start_site = dict(st.site_w)
        # ------------------------------------------------------- kept, starts, stops
        self.starts: list[_Replica] = []
        self.lowers: list[tuple[_Replica, int]] = []
        self.raises: list[tuple[_Replica, int]] = []
        planned = [0] * len(wls)
        for p in sorted(
            plan.placements, key=lambda p: (self.windex.get(p.workload, -1), p.node, p.gpu_indices)
        ):
            i = self.windex[p.workload]
            planned[i] += 1
            gpus = tuple(sorted(p.gpu_indices))
            pool = running.get((i, p.node, gpus))
            if pool:
                rep = pool.pop(0)
                if p.gpu_milli == FULL_MILLI and p.power_cap_w != rep.cap_w:
                    (self.lowers if p.power_cap_w < rep.cap_w else self.raises).append((rep, p.power_cap_w))
                continue
            self.starts.append(self._new(i, p.node, gpus, p.power_cap_w))
        self.stops: dict[int, set[int]] = defaultdict(set)  # workload -> pending stop ids
        self.stop_at: dict[tuple[str, str], set[int]] = defaultdict(set)  # ("node"|"domain"|"site", name)
        for pool in running.values():
            for rep in pool:
                self.stops[rep.w].add(rep.rid)
                for key in self._keys(rep.node):
                    self.stop_at[key].add(rep.rid)
        self.planned = planned
        self.nb = [min(s, p) for s, p in zip(self.start_count, planned, strict=True)]
        self.floor = []
        self.need_distinct = []
        self.need_surv = []
        for i, w in enumerate(wls):
            unavailable = w.max_unavailable or 0
            self.floor.append(min(self.start_count[i], planned[i], max(0, w.min_replicas - unavailable)))
            placed = planned[i] > 0
            self.need_distinct.append(
                min(w.spread.min_distinct, len(self.per_entity[i])) if placed and w.spread else 0
            )
            need = w.survivors_required if placed else 0
            self.need_surv.append(min(need, self._survivors(i)) if need > 0 else 0)
        # starts waiting per node, domain, site ("most useful room")
        self.waiting: Counter[tuple[str, str]] = Counter()
        for rep in self.starts:
            for key in self._keys(rep.node):
                self.waiting[key] += 1
        self.pending: dict[int, _Replica] = {rep.rid: rep for rep in self.starts}
        self.node_waiters: dict[str, list[int]] = defaultdict(list)
        self.power_waiters: dict[tuple[str, str], list[tuple[int, int, int, int]]] = defaultdict(list)
        self.ready: deque[int] = deque()
        self.adds_held: list[int] = []
        self.version: Counter[int] = Counter()
        self.last_short: dict[int, _Short] = {}
        self.epoch: Counter[tuple[str, str]] = Counter()  # steps that touched a node, domain or site
        self.failed: dict[
            int, tuple[tuple[str, str], int]
        ] = {}  # start -> (shortage, epoch) of a failed break
        self.targets: dict[str, set[int]] = defaultdict(set)  # node -> pending starts there
        for rep in self.starts:
            self.targets[rep.node].add(rep.rid)
        self.seq = 0
        # peaks
        self.peak_dom = {d: (st.dom_w[d], 0) for d in st.dom_usable}
        self.peak_site = {s: (st.site_w[s], 0) for s in st.site_usable}
        self.touched_domains: set[str] = set()

    # ------------------------------------------------------------------ helpers
    def _new(self, w: int, node: str, gpus: Iterable[int], cap_w: int) -> _Replica:
        wk = self.problem.workloads[w]
        self.rid += 1
        milli = wk.gpu_milli if wk.is_fractional else FULL_MILLI
        mem = memory_milli_gib(wk.memory_gib) if wk.is_fractional else 0
        return _Replica(self.rid, w, node, tuple(sorted(gpus)), cap_w, milli, mem)

    def _keys(self, node: str) -> tuple[tuple[str, str], ...]:
        n = self.st.nodes[node]
        return (("node", node), ("domain", n.power_domain), ("site", n.site))

    def _entity(self, w: int, node: str) -> str:
        spread = self.problem.workloads[w].spread
        n = self.st.nodes[node]
        if spread is None or spread.level is SpreadLevel.NODE:
            return node
        return n.site if spread.level is SpreadLevel.SITE else n.power_domain

    def _ready(self, rep: _Replica, sign: int) -> None:
        self.count[rep.w] += sign
        site = self.st.nodes[rep.node].site
        for counter, key in (
            (self.per_site[rep.w], site),
            (self.per_entity[rep.w], self._entity(rep.w, rep.node)),
        ):
            counter[key] += sign
            if counter[key] == 0:
                del counter[key]

    def _survivors(self, w: int) -> int:
        sites = self.per_site[w]
        return self.count[w] - max(sites.values(), default=0)

    def keeps(self, rep: _Replica, level: int) -> bool:
        """Stopping ready ``rep`` leaves its workload at ``level`` or more, spread and survival kept."""
        w = rep.w
        if self.count[w] - 1 < level:
            return False
        self._ready(rep, -1)
        ok = len(self.per_entity[w]) >= self.need_distinct[w] and (
            self.need_surv[w] == 0 or self._survivors(w) >= self.need_surv[w]
        )
        self._ready(rep, +1)
        return ok

    def score(self, rep: _Replica) -> tuple[bool, int, int, int, int]:
        node = self.st.nodes[rep.node]
        n_key, d_key, s_key = self._keys(rep.node)
        freed = len(rep.gpus) * rep.cap_w + (node.host_power_w if self.st.on[rep.node] == 1 else 0)
        return (
            node.state is not NodeState.READY,
            self.waiting[n_key],
            self.waiting[d_key],
            self.waiting[s_key],
            freed,
        )

    def emit(self, kind: StepKind, rep: _Replica, cap_w: int = 0) -> None:
        self.steps.append(
            MigrationStep(kind, self.problem.workloads[rep.w].name, rep.node, rep.gpus, cap_w, rep.milli)
        )
        if kind is StepKind.WAIT_READY:
            return
        n = self.st.nodes[rep.node]
        k = len(self.steps)
        for key in self._keys(rep.node):
            self.epoch[key] += 1
        self.touched_domains.add(n.power_domain)
        dw, sw = self.st.dom_w[n.power_domain], self.st.site_w[n.site]
        if dw > self.peak_dom[n.power_domain][0]:
            self.peak_dom[n.power_domain] = (dw, k)
        if sw > self.peak_site[n.site][0]:
            self.peak_site[n.site] = (sw, k)

    # -------------------------------------------------------------------- steps
    def stop(self, rep: _Replica, within: bool) -> None:
        w = rep.w
        self.stops[w].discard(rep.rid)
        for key in self._keys(rep.node):
            self.stop_at[key].discard(rep.rid)
        self._ready(rep, -1)
        self.st.apply(rep, -1)
        self.emit(StepKind.STOP, rep)
        if self.count[w] < self.nb[w]:  # taken down before a replacement is ready
            self.open_down[w].append(len(self.downtime))
            self.downtime.append(
                Downtime(self.problem.workloads[w].name, rep.node, rep.gpus, len(self.steps), 0, within)
            )
            self.down_ok.append(within)
            if not within:
                for j in self.open_down[w]:
                    self.down_ok[j] = False
        self.wake(rep.node)

    def start(self, rep: _Replica) -> None:
        del self.pending[rep.rid]
        self.targets[rep.node].discard(rep.rid)
        # the node is on now, a shared GPU shared: its other starts may need fewer watts
        self.ready.extend(r for r in self.targets[rep.node] if self.last_short.get(r, _NODE).key[0] != "node")
        for key in self._keys(rep.node):
            self.waiting[key] -= 1
        self.st.apply(rep, +1)
        self.emit(StepKind.START, rep, rep.cap_w)
        self._ready(rep, +1)
        self.emit(StepKind.WAIT_READY, rep)
        opened = self.open_down.get(rep.w)
        if opened:
            j = opened.popleft()
            d = self.downtime[j]
            self.downtime[j] = Downtime(
                d.workload, d.node, d.gpu_indices, d.stop_step, len(self.steps) - d.stop_step, d.within_budget
            )
        self.free_stops(rep.w)

    def free_stops(self, w: int) -> None:
        """S2 / S3: stops of ``w`` that keep it at its no-break level, most useful room first."""
        while self.stops[w] and self.count[w] - 1 >= self.nb[w]:
            reps = sorted((self.st.reps[r] for r in self.stops[w]), key=self.score, reverse=True)
            best = next((r for r in reps if self.keeps(r, self.nb[w])), None)
            if best is None:
                return
            self.stop(best, True)

    def wait_on(self, rep: _Replica, short: _Short) -> None:
        self.version[rep.rid] += 1
        self.last_short[rep.rid] = short
        if short.key[0] == "node":
            self.node_waiters[short.key[1]].append(rep.rid)
        else:
            self.seq += 1
            entry = (short.need_w, self.seq, rep.rid, self.version[rep.rid])
            heapq.heappush(self.power_waiters[short.key], entry)

    def wake(self, node: str) -> None:
        """Room freed on ``node``: its waiters, and the power waiters whose watts now fit."""
        ready = self.ready
        ready.extend(self.node_waiters.pop(node, ()))
        n = self.st.nodes[node]
        for key, left in (
            (("domain", n.power_domain), self.st.dom_limit[n.power_domain] - self.st.dom_w[n.power_domain]),
            (("site", n.site), self.st.site_limit[n.site] - self.st.site_w[n.site]),
        ):
            heap = self.power_waiters.get(key)
            while heap and heap[0][0] <= left:
                _, _, rid, version = heapq.heappop(heap)
                if rid in self.pending and self.version[rid] == version:
                    ready.append(rid)

    def run_ready(self) -> None:
        """S3 until no queued start is left."""
        while self.ready or (self.adds_held and not self.moves_left()):
            if not self.ready:
                self.ready.extend(self.adds_held)
                self.adds_held = []
            rid = self.ready.popleft()
            rep = self.pending.get(rid)
            if rep is None:
                continue
            short = self.st.short(rep)
            if short is None:
                self.start(rep)
            else:
                self.wait_on(rep, short)

    def moves_left(self) -> bool:
        return any(self.stops[self.pending[r].w] for r in self.pending)

    def sweep(self) -> bool:
        found = False
        for rid in sorted(self.pending):
            if self.st.short(self.pending[rid]) is None:
                self.ready.append(rid)
                found = True
        return found

    def shorts(self) -> list[tuple[_Replica, _Short]]:
        out = []
        for rid in sorted(self.pending):
            rep = self.pending[rid]
            s = self.st.short(rep)
            if s is not None:
                out.append((rep, s))
        return out

    def candidates(
        self, rep: _Replica, short: _Short, cache: dict[tuple[str, str], list[_Replica]]
    ) -> list[_Replica]:
        """Pending stops at what ``rep`` is short of: on a GPU it needs first, then the most useful."""
        if short.key[0] == "node":
            reps = [self.st.reps[r] for r in self.stop_at.get(short.key, ())]
            if short.rule in _GPU_RULES:
                want = set(rep.gpus)
                reps = [r for r in reps if want & set(r.gpus)]
            return sorted(reps, key=self.score, reverse=True)
        got = cache.get(short.key)
        if got is None:
            reps = [self.st.reps[r] for r in self.stop_at.get(short.key, ())]
            got = cache[short.key] = heapq.nlargest(_CANDIDATES, reps, key=self.score)
        return got

    def waiting_shorts(self) -> Iterator[tuple[_Replica, _Short]]:
        """The waiting starts with what each was last short of: a node's first, then a power
        domain's, then a site's; lazily, so that a break found early costs little."""
        for node, rids in list(self.node_waiters.items()):
            for rid in list(rids):
                short = self.last_short.get(rid)
                if rid in self.pending and short is not None and short.key == ("node", node):
                    yield self.pending[rid], short
        for kind in ("domain", "site"):
            for key, heap in list(self.power_waiters.items()):
                if key[0] != kind:
                    continue
                for _, _, rid, version in list(heap):
                    short = self.last_short.get(rid)
                    if rid in self.pending and self.version[rid] == version and short is not None:
                        yield self.pending[rid], short

    def freed_w(self, t: _Replica) -> int:
        """Rule 7: watts stopping ``t`` frees at most (its GPUs' watts over idle, and the node's
        idle draw when it is the node's last replica)."""
        gpu = self.st.gpu_type[t.node]
        node = self.st.nodes[t.node]
        per_gpu = (t.cap_w if t.milli == FULL_MILLI else gpu.max_power_w) - gpu.idle_power_w
        off = node.host_power_w + node.gpu_count * gpu.idle_power_w if self.st.on[t.node] == 1 else 0
        return len(t.gpus) * per_gpu + off

    def break_one(self, full: bool) -> bool:
        """S4: one affordable stop after which a waiting start fits. Unless ``full``, a start whose
        shortage saw no step since its last failed try is skipped."""
        cache: dict[tuple[str, str], list[_Replica]] = {}
        st = self.st
        for rep, short in self.waiting_shorts():
            epoch = self.epoch[short.key]
            if not full and self.failed.get(rep.rid) == (short.key, epoch):
                continue
            left = 0
            if short.key[0] == "domain":
                left = st.dom_limit[short.key[1]] - st.dom_w[short.key[1]]
            elif short.key[0] == "site":
                left = st.site_limit[short.key[1]] - st.site_w[short.key[1]]
            gap_w = st.added_w(rep) - left if short.key[0] != "node" else 0
            for t in self.candidates(rep, short, cache):
                if self.freed_w(t) < gap_w or not self.keeps(t, self.floor[t.w]):
                    continue
                st.apply(t, -1)
                fits = st.short(rep) is None
                st.apply(t, +1)
                if fits:
                    log.debug("break before make: stop %s on %s for %s", t.w, t.node, rep.node)
                    self.stop(t, True)
                    self.ready.append(rep.rid)
                    return True
            self.failed[rep.rid] = (short.key, epoch)
        return False

    def fallback(self) -> bool:
        """S5: record the waiting starts as blocked; stop first at the first one's shortage."""
        shorts = self.shorts()
        for rep, short in shorts:
            if rep.rid in self.blocked_ids:
                continue
            self.blocked_ids.add(rep.rid)
            self.blocked.append(
                BlockedMove(
                    self.problem.workloads[rep.w].name,
                    rep.node,
                    rep.gpus,
                    short.rule,
                    short.message,
                    float(short.requested),
                    float(short.available),
                    short.unit,
                    short.where,
                )
            )
        cache: dict[tuple[str, str], list[_Replica]] = {}
        for rep, short in shorts:
            cands = list(self.candidates(rep, short, cache))
            if cands:
                cands.sort(key=lambda t: not self.keeps(t, self.floor[t.w]))  # stable: affordable first
                t = cands[0]
                self.stop(t, self.keeps(t, self.floor[t.w]))
                self.ready.append(rep.rid)
                return True
        everything = [self.st.reps[r] for rids in self.stops.values() for r in rids]
        if not everything:
            return False
        t = max(everything, key=self.score)
        self.stop(t, self.keeps(t, self.floor[t.w]))
        self.sweep()
        return True

    def build(self) -> Migration:
        st = self.st
        # S1: lower caps in place
        for rep, cap in sorted(self.lowers, key=lambda rc: (rc[1] - rc[0].cap_w, rc[0].rid)):
            st.set_cap(rep, cap)
            self.emit(StepKind.SET_CAP, rep, cap)
            self.wake(rep.node)
        # S2: stops the plan drops
        for w in range(len(self.problem.workloads)):
            self.free_stops(w)
        # S3-S5
        moves = [r for r in self.starts if self.stops[r.w]]
        move_ids = {r.rid for r in moves}
        self.ready.extend(r.rid for r in moves)
        self.adds_held = [r.rid for r in self.starts if r.rid not in move_ids]
        while self.pending:
            self.run_ready()
            if not self.pending:
                break
            if self.break_one(False) or self.break_one(True):
                continue
            if self.adds_held:  # no move fits even with a break: the additions go now
                self.ready.extend(self.adds_held)
                self.adds_held = []
                continue
            if self.sweep():
                continue
            if not self.fallback():
                log.error(
                    "migration: %d starts fit no state; the plan does not fit the fleet", len(self.pending)
                )
                for rid in sorted(self.pending):
                    rep = self.pending[rid]
                    self.start(rep)
                break
        # S6: the stops left, then raises
        for w in range(len(self.problem.workloads)):
            for rep in sorted((st.reps[r] for r in self.stops[w]), key=self.score, reverse=True):
                self.stop(rep, True)
        for rep, cap in sorted(self.raises, key=lambda rc: (rc[1] - rc[0].cap_w, rc[0].rid)):
            st.set_cap(rep, cap)
            self.emit(StepKind.SET_CAP, rep, cap)
        end = len(self.steps)
        downtime = tuple(
            Downtime(d.workload, d.node, d.gpu_indices, d.stop_step, d.steps_down or end - d.stop_step, ok)
            for d, ok in zip(self.downtime, self.down_ok, strict=True)
        )
        fleet = self.problem.fleet
        site_peaks = tuple(
            PowerPeak(
                "site", s.name, s.name, s.usable_power_w, self.start_site.get(s.name, 0),
                *self.peak_site.get(s.name, (0, 0)), st.site_w[s.name],
            )
            for s in sorted(fleet.sites, key=lambda s: s.name)
        )  # fmt: skip
        domain_peaks = tuple(
            PowerPeak(
                "power_domain", d.name, d.site, d.usable_power_w, self.start_dom.get(d.name, 0),
                *self.peak_dom.get(d.name, (0, 0)), st.dom_w[d.name],
            )
            for d in sorted(fleet.power_domains, key=lambda d: d.name)
            if d.name in self.touched_domains
        )  # fmt: skip
        safe = not self.blocked and all(d.within_budget for d in downtime)
        return Migration(tuple(self.steps), tuple(self.blocked), downtime, site_peaks, domain_peaks, safe)


def migration(problem: Problem, plan: Plan) -> Migration:
    """The steps from the current placement to ``plan`` (a plan that passed the verifier), in a
    make-before-break order where the headroom allows it; see the module docstring."""
    m = _Builder(problem, plan).build()
    log.info(
        "migration: %d steps, %d blocked, %d replicas down, %s",
        len(m.steps),
        len(m.blocked),
        len(m.downtime),
        "safe" if m.safe else "not safe",
    )
    return m


def has_current(problem: Problem) -> bool:
    """Some workload runs today (a current replica on a node that is not DOWN)."""
    nodes = {n.name: n for n in problem.fleet.nodes}
    return any(
        (n := nodes.get(cr.node)) is not None and n.state is not NodeState.DOWN
        for w in problem.workloads
        for cr in w.current
    )
