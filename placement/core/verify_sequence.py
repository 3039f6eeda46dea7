"""The independent transient check of a migration sequence (issue 15, item 5).

``verify_migration(problem, plan, migration)`` replays the steps from the current placement,
one at a time, and checks every intermediate state; it shares no code with the sequence
builder (``placement.core.sequence``) or the placement kernel (``placement.core.state``). It
reads power with the plan verifier's arithmetic: the starting state's node draws come from
``budgets.node_draws`` and each step recomputes its node by rule 7 (``energy``); power caps
are the verifier's ``allowed_caps``, memory ``domain.memory_milli_gib``. Each finding is a
``Violation`` whose subject names the step (``step 12``; ``final`` for the end state).

The starting state: every current replica on a node that exists and is not DOWN runs and is
ready, at its recorded cap (``current_cap_w``). A state's limits are the rules' capacities, or
the starting state's use where that is higher (a rack the current placement already
overdraws may not draw more than it does).

==============  ===========================================================================
rule            what
==============  ===========================================================================
step            a step names a known workload and node; a START holds its workload's GPU
                count of distinct in-range indices at its share on a READY node; WAIT_READY
                follows a START; STOP and SET_CAP act on a running replica
gpu_count       a START's whole GPU is held by nothing else
gpu_share       a START's shared GPU is not held whole and its shares stay <= 1000 milli
gpu_memory      a shared GPU's fractional replicas' memory fits it
host_resources  tracked CPU and host memory of the node after a START
power_cap       a START or SET_CAP at an allowed level; a fractional replica uncapped
domain_power    every power domain's draw after each step <= its limit
site_power      every site's draw after each step <= its limit
floor           ready replicas of a workload >= min(start, planned, max(0, min_replicas -
                max_unavailable)), max_unavailable None counting as 0
spread          a workload the plan places with a spread keeps >= min(min_distinct, its
                distinct entities at the start) among its ready replicas
site_survival   r - max_s r_s of the ready replicas >= min(survivors_required, its start value)
final_state     after the last step the running replicas are the plan's placements (node,
                GPUs, share, cap), every one ready
migration       its claims: safe only with no blocked move and every break within budget; a
                break of floor, spread or survival only in an unsafe migration, inside a
                declared out-of-budget ``Downtime`` of its workload; peaks as replayed
==============  ===========================================================================

Everything is incremental: a step touches one node, its power domain and site, and one
workload, so a check of 10,000 steps on a fleet of 30,000 GPUs takes a fraction of a second.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from placement.core.budgets import FULL_GPU_MILLI, node_draws
from placement.core.domain import (
    Migration,
    Node,
    NodeState,
    Plan,
    PowerPeak,
    Problem,
    ReplicaPlacement,
    SpreadLevel,
    StepKind,
    current_cap_w,
    memory_milli_gib,
)
from placement.core.energy import node_on_power_w, shared_gpu_power_w
from placement.core.errors import PlanRejected
from placement.core.verify import Violation, _Verifier, verify

log = logging.getLogger(__name__)

AVAILABILITY = ("floor", "spread", "site_survival")


@dataclass
class _Running:
    cap_w: int
    milli: int
    ready: bool


@dataclass
class _Occ:
    whole: list[tuple[str, int]] = field(default_factory=list)  # (workload, cap) holding it whole
    shared: list[str] = field(default_factory=list)
    milli: int = 0
    mem: int = 0


Key = tuple[str, str, tuple[int, ...]]


class _Replay:
    def __init__(self, problem: Problem, plan: Plan, m: Migration) -> None:
        self.problem = problem
        self.plan = plan
        self.m = m
        self.helpers = _Verifier(problem, plan)  # the plan verifier's lookups and allowed caps
        fleet = problem.fleet
        self.workloads = {w.name: w for w in problem.workloads}
        self.nodes: dict[str, Node] = {n.name: n for n in fleet.nodes}
        self.gpu_types = {g.name: g for g in fleet.gpu_types}
        self.out: list[Violation] = []
        self.running: dict[Key, list[_Running]] = defaultdict(list)
        self.occ: dict[tuple[str, int], _Occ] = {}
        self.on: Counter[str] = Counter()
        self.cpu: Counter[str] = Counter()
        self.mem: Counter[str] = Counter()
        self.node_w: dict[str, int] = {}
        self.dom_w: Counter[str] = Counter()
        self.site_w: Counter[str] = Counter()
        self.ready: Counter[str] = Counter()
        self.per_site: dict[str, Counter[str]] = defaultdict(Counter)
        self.per_entity: dict[str, Counter[str]] = defaultdict(Counter)
        self.below: set[tuple[str, str]] = set()  # (rule, workload) currently broken
        self.avail: list[tuple[int, str, Violation]] = []  # (step, workload, finding) of AVAILABILITY

    def add(self, rule: str, step: int, message: str) -> None:
        self.out.append(Violation(rule, f"step {step}" if step else "final", message))

    # ---------------------------------------------------------------- the state
    def _entity(self, w: str, node: Node) -> str:
        spread = self.workloads[w].spread
        if spread is None or spread.level is SpreadLevel.NODE:
            return node.name
        return node.site if spread.level is SpreadLevel.SITE else node.power_domain

    def _count(self, w: str, node: Node, sign: int) -> None:
        self.ready[w] += sign
        for counter, key in ((self.per_site[w], node.site), (self.per_entity[w], self._entity(w, node))):
            counter[key] += sign
            if counter[key] <= 0:
                del counter[key]

    def _occupy(self, w: str, node: Node, gpus: tuple[int, ...], cap_w: int, milli: int, sign: int) -> None:
        wk = self.workloads[w]
        for idx in gpus:
            occ = self.occ.get((node.name, idx))
            if occ is None:
                occ = self.occ[(node.name, idx)] = _Occ()
            if milli >= FULL_GPU_MILLI:
                if sign > 0:
                    occ.whole.append((w, cap_w))
                else:
                    occ.whole.remove((w, cap_w))
            else:
                if sign > 0:
                    occ.shared.append(w)
                else:
                    occ.shared.remove(w)
                occ.milli += sign * milli
                occ.mem += sign * memory_milli_gib(wk.memory_gib)
        self.on[node.name] += sign
        self.cpu[node.name] += sign * wk.cpu_milli
        self.mem[node.name] += sign * wk.host_memory_mib

    def _redraw(self, node: Node) -> None:
        """Rule 7 for one node, from its GPUs' occupancy."""
        gpu = self.gpu_types[node.gpu_type]
        watts = 0
        if self.on[node.name] > 0:
            watts = node_on_power_w(node.host_power_w, node.gpu_count, gpu)
            for idx in range(node.gpu_count):
                occ = self.occ.get((node.name, idx))
                if occ is None:
                    continue
                if occ.shared:
                    watts += shared_gpu_power_w(gpu) - gpu.idle_power_w
                elif occ.whole:
                    watts += max(cap for _, cap in occ.whole) - gpu.idle_power_w
        delta = watts - self.node_w.get(node.name, 0)
        self.node_w[node.name] = watts
        self.dom_w[node.power_domain] += delta
        self.site_w[node.site] += delta

    def start_state(self) -> None:
        rows: list[ReplicaPlacement] = []
        for w in self.problem.workloads:
            for cr in w.current:
                node = self.nodes.get(cr.node)
                if node is None or node.state is NodeState.DOWN or node.gpu_type not in self.gpu_types:
                    continue
                gpu = self.gpu_types[node.gpu_type]
                cap = current_cap_w(w, cr, gpu)
                milli = w.gpu_milli if w.is_fractional else FULL_GPU_MILLI
                gpus = tuple(sorted(cr.gpu_indices))
                self.running[(w.name, node.name, gpus)].append(_Running(cap, milli, True))
                self._occupy(w.name, node, gpus, cap, milli, +1)
                self._count(w.name, node, +1)
                rows.append(
                    ReplicaPlacement(w.name, 0, node.site, node.power_domain, node.name, gpus, milli, cap)
                )
        for name, draw in node_draws(self.problem.fleet, rows).items():
            node = self.nodes[name]
            self.node_w[name] = draw.it_w
            self.dom_w[node.power_domain] += draw.it_w
            self.site_w[node.site] += draw.it_w
        fleet = self.problem.fleet
        self.dom_limit = {d.name: max(d.usable_power_w, self.dom_w[d.name]) for d in fleet.power_domains}
        self.site_limit = {s.name: max(s.usable_power_w, self.site_w[s.name]) for s in fleet.sites}
        # 0: not tracked (rule 5)
        self.cpu_limit = {
            n: max(x.cpu_milli, self.cpu[n]) if x.cpu_milli else 0 for n, x in self.nodes.items()
        }
        self.mem_limit = {
            n: max(x.host_memory_mib, self.mem[n]) if x.host_memory_mib else 0 for n, x in self.nodes.items()
        }
        self.start_dom = dict(self.dom_w)
        self.start_site = dict(self.site_w)
        self.peak_dom = {d: (self.dom_w[d], 0) for d in self.dom_limit}
        self.peak_site = {s: (self.site_w[s], 0) for s in self.site_limit}
        # the levels each workload must keep
        planned: Counter[str] = Counter(p.workload for p in self.plan.placements)
        self.floor: dict[str, int] = {}
        self.need_distinct: dict[str, int] = {}
        self.need_surv: dict[str, int] = {}
        for w in self.problem.workloads:
            start = self.ready[w.name]
            self.floor[w.name] = min(
                start, planned[w.name], max(0, w.min_replicas - (w.max_unavailable or 0))
            )
            if planned[w.name] and w.spread is not None:
                self.need_distinct[w.name] = min(w.spread.min_distinct, len(self.per_entity[w.name]))
            if planned[w.name] and w.survivors_required > 0:
                self.need_surv[w.name] = min(w.survivors_required, self._survivors(w.name))

    def _survivors(self, w: str) -> int:
        return self.ready[w] - max(self.per_site[w].values(), default=0)

    # ----------------------------------------------------------------- the steps
    def replay(self) -> None:
        self.start_state()
        for k, s in enumerate(self.m.steps, 1):
            wk = self.workloads.get(s.workload)
            node = self.nodes.get(s.node)
            if wk is None or node is None or node.gpu_type not in self.gpu_types:
                what = f"workload {s.workload}" if wk is None else f"node {s.node}"
                self.add("step", k, f"{s.kind.value} of {s.workload} on {s.node}: {what} does not exist")
                continue
            key = (wk.name, node.name, tuple(sorted(s.gpu_indices)))
            where = f"{s.kind.value} {wk.name} on {node.name} GPUs {list(s.gpu_indices)}"
            if s.kind is StepKind.START:
                self.start(k, s.power_cap_w, s.gpu_milli, key, node, where)
            elif s.kind is StepKind.WAIT_READY:
                waiting = next((r for r in self.running.get(key, ()) if not r.ready), None)
                if waiting is None:
                    self.add("step", k, f"{where}: no started replica there waits to be ready")
                    continue
                waiting.ready = True
                self._count(wk.name, node, +1)
                self.availability(k, wk.name)
            elif s.kind is StepKind.STOP:
                reps = self.running.get(key, [])
                if not reps:
                    self.add("step", k, f"{where}: stops nothing, no such replica runs")
                    continue
                rep = next((r for r in reps if r.ready), reps[0])
                reps.remove(rep)
                self._occupy(wk.name, node, key[2], rep.cap_w, rep.milli, -1)
                if rep.ready:
                    self._count(wk.name, node, -1)
                self._redraw(node)
                self.availability(k, wk.name)
            else:
                self.set_cap(k, s.power_cap_w, key, node, where)
            self.power(k, node)
        self.final()

    def start(self, k: int, cap_w: int, milli: int, key: Key, node: Node, where: str) -> None:
        wk = self.workloads[key[0]]
        gpu = self.gpu_types[node.gpu_type]
        bad = False
        if node.state is not NodeState.READY:
            self.add("step", k, f"{where}: node is {node.state.value}, only READY nodes take replicas")
        want = 1 if wk.is_fractional else wk.gpus
        idx = key[2]
        if len(idx) != want or len(set(idx)) != len(idx) or any(not 0 <= i < node.gpu_count for i in idx):
            self.add("step", k, f"{where}: needs {want} distinct GPU indices in 0..{node.gpu_count - 1}")
            bad = True
        share = wk.gpu_milli if wk.is_fractional else FULL_GPU_MILLI
        if milli != share:
            self.add("step", k, f"{where}: holds {milli} milli of each GPU, the workload {share}")
            bad = True
        if bad:
            return
        if wk.is_fractional:
            if cap_w != gpu.max_power_w:
                self.add(
                    "power_cap",
                    k,
                    f"{where}: a shared GPU runs uncapped at {gpu.max_power_w} W, not {cap_w} W",
                )
        elif cap_w not in self.helpers.allowed_caps(wk, gpu):
            self.add(
                "power_cap", k, f"{where}: cap {cap_w} W is not an allowed {gpu.name} level for {wk.name}"
            )
        for i in idx:
            occ = self.occ.get((node.name, i))
            if occ is None:
                continue
            what = f"{where}: GPU {i} of node {node.name}"
            holders = ", ".join(sorted({w for w, _ in occ.whole} | set(occ.shared)))
            if not wk.is_fractional and (occ.whole or occ.shared):
                self.add("gpu_count", k, f"{what} is already held by {holders}")
            elif wk.is_fractional and occ.whole:
                self.add("gpu_share", k, f"{what} is held whole by {holders}")
            elif wk.is_fractional and occ.milli + milli > FULL_GPU_MILLI:
                self.add("gpu_share", k, f"{what} is shared for {occ.milli} milli, {milli} more is over 1000")
            elif wk.is_fractional and occ.mem + memory_milli_gib(wk.memory_gib) > memory_milli_gib(
                gpu.memory_gib
            ):
                need = (occ.mem + memory_milli_gib(wk.memory_gib)) / 1000
                self.add(
                    "gpu_memory",
                    k,
                    f"{what}: its tenants would need {need:g} GiB, a {gpu.name} has {gpu.memory_gib:g}",
                )
        self.running[key].append(_Running(cap_w, milli, False))
        self._occupy(wk.name, node, idx, cap_w, milli, +1)
        for what, used, limit, unit in (
            ("CPU", self.cpu[node.name], self.cpu_limit[node.name], "mCPU"),
            ("host memory", self.mem[node.name], self.mem_limit[node.name], "MiB"),
        ):
            if limit > 0 and used > limit:
                self.add(
                    "host_resources",
                    k,
                    f"{where}: node {node.name} is asked {used} {unit} of {what}, has {limit}",
                )
        self._redraw(node)

    def set_cap(self, k: int, cap_w: int, key: Key, node: Node, where: str) -> None:
        wk = self.workloads[key[0]]
        gpu = self.gpu_types[node.gpu_type]
        reps = self.running.get(key, [])
        if not reps:
            self.add("step", k, f"{where}: no such replica runs")
            return
        if wk.is_fractional:
            self.add("power_cap", k, f"{where}: a fractional replica's GPU runs uncapped, no cap to set")
            return
        if cap_w not in self.helpers.allowed_caps(wk, gpu):
            self.add(
                "power_cap", k, f"{where}: cap {cap_w} W is not an allowed {gpu.name} level for {wk.name}"
            )
        rep = reps[0]
        self._occupy(wk.name, node, key[2], rep.cap_w, rep.milli, -1)
        rep.cap_w = cap_w
        self._occupy(wk.name, node, key[2], rep.cap_w, rep.milli, +1)
        self._redraw(node)

    def power(self, k: int, node: Node) -> None:
        d, s = node.power_domain, node.site
        dw, sw = self.dom_w[d], self.site_w[s]
        if dw > self.peak_dom.get(d, (0, 0))[0]:
            self.peak_dom[d] = (dw, k)
        if sw > self.peak_site.get(s, (0, 0))[0]:
            self.peak_site[s] = (sw, k)
        if d in self.dom_limit and dw > self.dom_limit[d]:
            self.add(
                "domain_power", k, f"power domain {d} in site {s} draws {dw} W, limit {self.dom_limit[d]} W"
            )
        if s in self.site_limit and sw > self.site_limit[s]:
            self.add("site_power", k, f"site {s} draws {sw} W, limit {self.site_limit[s]} W")

    def availability(self, k: int, w: str) -> None:
        """After a stop: the floor, spread and survival of ``w``, each reported when it first breaks."""
        checks = [("floor", self.ready[w], self.floor[w], "ready replicas")]
        if w in self.need_distinct:
            checks.append(
                ("spread", len(self.per_entity[w]), self.need_distinct[w], "distinct spread entities")
            )
        if w in self.need_surv:
            checks.append(
                ("site_survival", self._survivors(w), self.need_surv[w], "replicas left after losing a site")
            )
        for rule, have, need, what in checks:
            if have >= need:
                self.below.discard((rule, w))
            elif (rule, w) not in self.below:
                self.below.add((rule, w))
                self.avail.append(
                    (k, w, Violation(rule, f"step {k}", f"{w} has {have} {what}, at least {need} must stay"))
                )

    def final(self) -> None:
        have: Counter[tuple[str, str, tuple[int, ...], int, int]] = Counter()
        for (w, node, gpus), reps in self.running.items():
            for r in reps:
                have[(w, node, gpus, r.milli, r.cap_w)] += 1
                if not r.ready:
                    self.add("final_state", 0, f"{w} on {node} GPUs {list(gpus)} is started but never ready")
        want: Counter[tuple[str, str, tuple[int, ...], int, int]] = Counter(
            (p.workload, p.node, tuple(sorted(p.gpu_indices)), p.gpu_milli, p.power_cap_w)
            for p in self.plan.placements
        )
        for key in sorted((want - have) | (have - want)):
            w, node, gpus, milli, cap = key
            missing = want[key] - have[key]
            words = (
                "the plan places it, the sequence does not"
                if missing > 0
                else "runs, the plan does not place it"
            )
            self.add("final_state", 0, f"{w} on {node} GPUs {list(gpus)} ({milli} milli, {cap} W): {words}")

    # ----------------------------------------------------------------- the claims
    def claims(self) -> None:
        m = self.m
        out_of_budget = [d for d in m.downtime if not d.within_budget]
        if m.safe and (m.blocked or out_of_budget):
            self.out.append(
                Violation(
                    "migration",
                    "safe",
                    f"the migration says it is safe with {len(m.blocked)} blocked moves and "
                    f"{len(out_of_budget)} replicas down beyond their budget",
                )
            )
        windows: dict[str, list[tuple[int, int]]] = defaultdict(list)
        if not m.safe:
            for d in out_of_budget:
                windows[d.workload].append((d.stop_step, d.stop_step + d.steps_down))
        for k, w, v in self.avail:
            if not any(a <= k <= b for a, b in windows.get(w, ())):
                self.out.append(v)  # not declared: the fallback's out-of-budget downtime excuses only itself
        for kind, got, start, peak, end in (
            ("site", m.site_peaks, self.start_site, self.peak_site, self.site_w),
            ("power_domain", m.domain_peaks, self.start_dom, self.peak_dom, self.dom_w),
        ):
            for p in got:
                want = PowerPeak(
                    kind,
                    p.name,
                    p.site,
                    p.usable_w,
                    start.get(p.name, 0),
                    *peak.get(p.name, (0, 0)),
                    end.get(p.name, 0),
                )
                if p != want:
                    self.out.append(
                        Violation("migration", f"{kind} {p.name}", f"peak reported {p}, replayed {want}")
                    )
        listed = {p.name for p in m.site_peaks}
        for s in sorted(self.site_limit):
            if s not in listed:
                self.out.append(Violation("migration", f"site {s}", f"site {s} has no peak in the migration"))


def verify_migration(problem: Problem, plan: Plan, migration: Migration) -> list[Violation]:
    """Every breach of the transient rules in ``migration`` from the current placement to ``plan``; []
    when every intermediate state is within them and the migration's claims hold."""
    r = _Replay(problem, plan, migration)
    r.replay()
    r.claims()
    if r.out:
        log.debug("migration has %d violations", len(r.out))
    return r.out


def verify_all(problem: Problem, plan: Plan) -> list[Violation]:
    """Every violation of ``plan``: the plan verifier's (``verify.verify``), then the transient
    check's of the migration the plan carries (a plan without one: the plan verifier's alone).
    What ``fleetplace verify`` and the Verify RPC answer for a plan file."""
    out = list(verify(problem, plan))
    if plan.migration is not None:
        out += verify_migration(problem, plan, plan.migration)
    return out


def check_migration(problem: Problem, plan: Plan, migration: Migration) -> None:
    """Raise ``PlanRejected`` with every violation of the transient check."""
    violations = verify_migration(problem, plan, migration)
    if violations:
        raise PlanRejected(list(violations))
