"""Fragmentation gradient descent for GPU-sharing fleets: one batch, online batches, and a refill.

The measure and the policy are ``placement.construct.policies`` (``Measure``, ``Fragmentation``: F1-F4,
after Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC'23); the loop and every rule are the
heuristics' (``placement.construct.heuristics.Packing`` on a ``placement.core.state.FleetState``), so
spread and site-survival rules hold here as everywhere. The task mix is the paper's
"target workload": each task class (GPUs or share, host CPU and memory, allowed GPU types)
weighted by its share of the tasks (``Measure.of_tasks``), ties to the node left with the
least free GPU capacity (F3).

* ``fgd_place``: one batch, pinned workloads where they are, the others by FGD in one
  order or the best of several (``lookahead``).
* ``OnlinePlacer``: FGD for FGD's online protocol. The task mix is every task seen so far
  (also those that found no room), and the score leans towards the node left with more
  free GPU capacity (F4, ``spread_weight`` w, ``ONLINE_SPREAD_WEIGHT``). It keeps its
  fleet between calls: workloads pinned by the caller are checked against what it placed
  before (and the state rebuilt only when they differ), so a batch costs its new tasks
  only, not every task placed so far. The lean trades a little fragmentation for emptier
  nodes (figures: docs/experiments/2026-12-06-method-tuning.md).
* Batch look-ahead (``lookahead``, optional): a batch placed in several orders (arrival,
  decreasing GPU demand) from the same state, keeping the order that places the most work,
  then (``by_frag``) the least fleet fragmentation (F2) or the first order listed.
  ``OnlinePlacer`` uses arrival order alone by default.
* ``refill``: a local search for one batch. For each GPU not full, its fractional tasks go
  back to the pool of unplaced fractional tasks and a knapsack over the pool (GPU
  thousandths of the GPU, the node's free CPU and memory, the GPU's memory) refills it;
  the refill is kept when it holds more work and the rule kernel takes every task of it.
  Placed work never drops.
* ``improve``: the better of a given plan and FGD's (in decreasing demand), each refilled.

``unsupported(problem)`` names the workloads with spread or site-survival rules: ``refill``
moves single-replica fractional tasks only, and ``improve`` (the engine's last step where
it builds no model) leaves plans with such rules as they are.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

from placement.construct.greedy import positions, put, take
from placement.construct.heuristics import Packing
from placement.construct.policies import UNTRACKED, ClassKey, FirstFit, Fragmentation, Measure
from placement.core.budgets import FULL_GPU_MILLI
from placement.core.domain import Problem, ReplicaPlacement, Workload, memory_milli_gib
from placement.core.objective import evaluate
from placement.core.state import Fit

log = logging.getLogger(__name__)

ORDERS: tuple[str, ...] = ("arrival", "demand")
ONLINE_SPREAD_WEIGHT = 0.1  # (F4)


def class_of(w: Workload) -> ClassKey:
    return (w.gpus, w.gpu_milli, w.cpu_milli, w.host_memory_mib, tuple(sorted(w.allowed_gpu_types)))


def unsupported(problem: Problem) -> list[str]:
    """Workloads with spread or site-survival rules (``refill`` and ``improve`` leave such plans be)."""
    return [
        w.name
        for w in problem.workloads
        if not w.pinned and (w.spread is not None or w.survivors_required > 0)
    ]


def policy_for(packing: Packing, counts: Counter[ClassKey], lean: float = 0.0) -> Fragmentation:
    """FGD with the task mix ``counts`` (F3; F4 with ``lean``)."""
    return Fragmentation(Measure.of_tasks(packing.types, counts), lean=lean, fuller_first=True)


def placed_milli(placements: Iterable[ReplicaPlacement]) -> int:
    return sum(p.gpu_milli * len(p.gpu_indices) for p in placements)


def _demand_order(ws: Sequence[Workload]) -> list[Workload]:
    return sorted(ws, key=lambda w: (-w.priority * w.work_milli * w.max_replicas, -w.cpu_milli, w.name))


def place_batch(packing: Packing, ws: Sequence[Workload], order: str) -> int:
    """Place ``ws`` in one order; returns the placed priority-weighted GPU thousandths."""
    got = 0
    seq = _demand_order(ws) if order == "demand" else list(ws)
    for w in seq:
        ps = packing.place(w)
        got += w.priority * w.work_milli * len(ps)
    return got


def lookahead(
    packing: Packing, ws: Sequence[Workload], orders: Sequence[str] = ORDERS, by_frag: bool = True
) -> str:
    """Place ``ws`` in each order from the same state and keep the best (see module docstring)."""
    if len(orders) == 1:
        place_batch(packing, ws, orders[0])
        return orders[0]
    measure = getattr(packing.policy, "measure", None)
    if by_frag and not isinstance(measure, Measure):
        raise TypeError("lookahead by fragmentation needs an FGD policy")
    start = packing.mark()
    best: tuple[int, float] | None = None
    best_order = orders[0]
    for k, order in enumerate(orders):
        got = place_batch(packing, ws, order)
        frag = measure.fleet(packing.signatures()) if isinstance(measure, Measure) and by_frag else float(k)
        score = (-got, frag)
        if best is None or score < best:
            best, best_order = score, order
        if k < len(orders) - 1:
            packing.undo(start)
    if best_order != orders[-1]:
        packing.undo(start)
        place_batch(packing, ws, best_order)
    packing.forget()
    return best_order


def fgd_place(problem: Problem, orders: Sequence[str] = ("demand",)) -> tuple[ReplicaPlacement, ...]:
    """One batch: pinned workloads where they are, the others by FGD (F3), best of ``orders``."""
    packing = Packing(problem, FirstFit())
    packing.set_policy(policy_for(packing, Counter(class_of(w) for w in problem.workloads)))
    for w in problem.workloads:
        if w.pinned:
            packing.pin(w)
    lookahead(packing, [w for w in problem.workloads if not w.pinned], orders)
    return packing.placements()


# ----------------------------------------------------------------------------- online


class OnlinePlacer:
    """FGD (F1-F4) for FGD's online protocol; keeps the fleet between calls.

    Call it with each batch's problem: the workloads placed by earlier calls pinned where
    they are, the new ones free. The task mix ``p_m`` is every task seen so far (also those
    that found no room), or ``prior`` when given. A call whose pinned workloads are not
    exactly what this placer left (another stream, or a caller that moved something) starts
    it afresh from that problem. ``orders`` and ``by_frag``: see ``lookahead``.
    """

    def __init__(
        self,
        orders: Sequence[str] = ("arrival",),
        prior: Sequence[Workload] = (),
        by_frag: bool = False,
        spread_weight: float = ONLINE_SPREAD_WEIGHT,
    ) -> None:
        self.orders = tuple(orders)
        self.spread_weight = spread_weight
        self.by_frag = by_frag
        self.prior: Counter[ClassKey] = Counter(class_of(w) for w in prior)
        self.seen: Counter[ClassKey] = Counter()
        self.seen_names: set[str] = set()
        self.packing: Packing | None = None
        self.placed: dict[str, list[tuple[str, tuple[int, ...]]]] = {}  # what the last call left
        self.rebuilds = 0
        self.chosen: Counter[str] = Counter()

    def _in_sync(self, problem: Problem, pinned: list[Workload]) -> bool:
        c = self.packing
        if c is None or (c.problem.fleet is not problem.fleet and c.problem.fleet != problem.fleet):
            return False
        if len(pinned) != len(self.placed):
            return False
        for w in pinned:
            got = self.placed.get(w.name)
            if got is None or len(got) != len(w.current):
                return False
            for (node, idx), cur in zip(got, w.current, strict=True):
                if node != cur.node or idx != tuple(cur.gpu_indices):
                    return False
        return True

    def __call__(self, problem: Problem) -> tuple[ReplicaPlacement, ...]:
        pinned = [w for w in problem.workloads if w.pinned]
        new = [w for w in problem.workloads if not w.pinned]
        if not self._in_sync(problem, pinned):
            # another stream (or a caller that moved things): start again from this problem
            self.rebuilds += 1
            self.seen, self.seen_names = Counter(), set()
            self.packing = Packing(Problem(problem.fleet, tuple(pinned), problem.options), FirstFit())
            for w in pinned:
                self.packing.pin(w)
        packing = self.packing
        assert packing is not None  # set just above
        packing.admit(new)
        for w in problem.workloads:
            if w.name not in self.seen_names:
                self.seen_names.add(w.name)
                self.seen[class_of(w)] += 1
        packing.set_policy(policy_for(packing, self.prior or self.seen, self.spread_weight))
        t0 = time.perf_counter()
        order = lookahead(packing, new, self.orders, self.by_frag)
        self.chosen[order] += 1
        log.debug("online batch: %d new, order %s, %.3f s", len(new), order, time.perf_counter() - t0)
        out = packing.placements()
        self.placed = {}
        for p in out:
            self.placed.setdefault(p.workload, []).append((p.node, tuple(p.gpu_indices)))
        return out


# ----------------------------------------------------------------------------- refill


def _refill(
    items: list[tuple[int, int, int, int, int, str]],
    cap_milli: int,
    cpu: int,
    mem: int,
    gmem: int,
    front: int = 6,
) -> tuple[int, list[str]]:
    """Knapsack over ``items`` (milli, value, cpu, host MiB, GPU MiB, name) into one GPU.

    A dynamic programme over the GPU thousandths filled (0..``cap_milli``, in steps of their
    gcd) that keeps, per fill level, the sets no other set beats in value and every host
    budget (a Pareto front, at most ``front`` of them: the ones of least normalised host use
    first). Exact while no front is cut. Returns (value, names) of the best set.
    """
    step = 0
    for it in items:
        step = math.gcd(step, it[0])
    step = math.gcd(step, cap_milli) or 1
    size = cap_milli // step
    cpu_n = 1.0 / cpu if 0 < cpu < UNTRACKED else 0.0
    mem_n = 1.0 / mem if 0 < mem < UNTRACKED else 0.0
    # per fill level: states (value, -cost, cpu, mem, gmem, chosen item indices)
    State = tuple[int, float, int, int, int, tuple[int, ...]]
    dp: list[list[State]] = [[] for _ in range(size + 1)]
    dp[0] = [(0, 0.0, 0, 0, 0, ())]
    for k, (milli, value, c, m, gm, _) in enumerate(items):
        u = milli // step
        for s in range(size, u - 1, -1):
            prevs = dp[s - u]
            if not prevs:
                continue
            states = dp[s]
            changed = False
            for prev in prevs:
                nc, nm, ng = prev[2] + c, prev[3] + m, prev[4] + gm
                if nc > cpu or nm > mem or ng > gmem:
                    continue
                nv = prev[0] + value
                if any(o[0] >= nv and o[2] <= nc and o[3] <= nm and o[4] <= ng for o in states):
                    continue
                states = [o for o in states if not (nv >= o[0] and nc <= o[2] and nm <= o[3] and ng <= o[4])]
                states.append((nv, prev[1] - c * cpu_n - m * mem_n, nc, nm, ng, (*prev[5], k)))
                changed = True
            if changed:
                if len(states) > front:
                    states.sort(key=lambda o: (-o[0], -o[1]))
                    del states[front:]
                dp[s] = states
    best = max((d for ds in dp for d in ds), key=lambda d: (d[0], d[1]))
    return best[0], [items[k][5] for k in best[5]]


def refill(
    problem: Problem,
    placements: Sequence[ReplicaPlacement],
    passes: int = 2,
    deadline: float | None = None,
) -> tuple[ReplicaPlacement, ...]:
    """Local search over fractional tasks (module docstring); never less placed work than given.

    Only single-replica fractional workloads move; every other placement stays as given.
    First the unplaced workloads are offered to FGD (F3) in decreasing demand, then each GPU
    that is not full is refilled from the pool, ``passes`` times or until ``deadline``
    (``time.monotonic()`` seconds, the solve's one clock).
    """
    packing = Packing(problem, FirstFit())
    st = packing.st
    wi = packing.workload_index
    for p in placements:
        st.add_at(wi[p.workload], packing.p.node_index[p.node], tuple(p.gpu_indices), p.power_cap_w)
    packing.set_policy(policy_for(packing, Counter(class_of(w) for w in problem.workloads)))
    by_name = {w.name: w for w in problem.workloads}
    placed = {p.workload for p in placements}
    place_batch(packing, [w for w in problem.workloads if w.name not in placed and not w.pinned], "demand")
    held = {problem.workloads[row[0]].name for row in st.placements}
    movable = {
        w.name
        for w in problem.workloads
        if w.is_fractional and w.max_replicas == 1 and w.min_replicas <= 1 and not w.pinned
    }
    pool: dict[tuple[int, int, int, int, tuple[str, ...], str, float, float, int], list[str]] = defaultdict(
        list
    )

    def pool_key(w: Workload) -> tuple[int, int, int, int, tuple[str, ...], str, float, float, int]:
        return (
            w.gpu_milli,
            w.priority,
            w.cpu_milli,
            w.host_memory_mib,
            tuple(sorted(w.allowed_gpu_types)),
            w.user_region if w.max_latency_ms > 0 else "",
            w.max_latency_ms,
            w.backup_minutes,
            memory_milli_gib(w.memory_gib),
        )

    for name in sorted(movable - held):
        pool[pool_key(by_name[name])].append(name)
    pos = positions(st)
    improved = 0
    for _ in range(passes):
        gained = 0
        for n, info in enumerate(packing.p.nodes):
            if deadline is not None and time.monotonic() > deadline:
                break
            if not packing.ready[n] or not info.gpu.shareable:
                continue
            node = info.node
            for k in range(node.gpu_count):
                sh = st.shared[n].get(k)
                if k in st.whole[n] or (sh is not None and sh.milli >= FULL_GPU_MILLI):
                    continue
                here = (
                    [problem.workloads[x] for x, c in sh.tenants.items() if c > 0] if sh is not None else []
                )
                if any(w.name not in movable for w in here):
                    continue
                old = sum(w.priority * w.gpu_milli for w in here)
                # host budgets with this GPU's tasks taken out
                cpu = (
                    node.cpu_milli - st.cpu[n] + sum(w.cpu_milli for w in here)
                    if node.cpu_milli > 0
                    else UNTRACKED
                )
                mem = (
                    node.host_memory_mib - st.hmem[n] + sum(w.host_memory_mib for w in here)
                    if node.host_memory_mib > 0
                    else UNTRACKED
                )
                items = [_item(w) for w in here]
                for names in pool.values():
                    if not names:
                        continue
                    w0 = by_name[names[0]]
                    if info.gpu.name not in packing.types_for(w0) or info.site.name not in packing.sites_for(
                        w0
                    ):
                        continue
                    copies = min(len(names), FULL_GPU_MILLI // w0.gpu_milli)
                    items.extend(_item(by_name[name]) for name in names[-copies:])
                if len(items) == len(here):
                    continue
                value, chosen = _refill(items, FULL_GPU_MILLI, cpu, mem, packing.gmem_cap[n])
                if value <= old:
                    continue
                mark = st.mark()
                for w in here:
                    take(st, pos, (wi[w.name], n, (k,)))
                ok = True
                for name in chosen:
                    got = st.check(wi[name], n, (), k)  # the kernel: shares, memory, host, power
                    if type(got) is not Fit:
                        ok = False
                        break
                    put(st, pos, wi[name], got)
                if not ok:
                    st.undo(mark)
                    st.forget()
                    pos = positions(st)
                    continue
                st.forget()
                packing.reindex(n)
                for w in here:
                    if w.name not in chosen:
                        pool[pool_key(w)].append(w.name)
                for name in chosen:
                    if name not in {w.name for w in here}:
                        pool[pool_key(by_name[name])].remove(name)
                gained += value - old
        improved += gained
        if not gained:
            break
    log.info("refill: +%d priority-weighted thousandths", improved)
    return packing.placements()


def _item(w: Workload) -> tuple[int, int, int, int, int, str]:
    """A fractional task as the knapsack reads it: milli, value, CPU, host memory, GPU memory, name."""
    return (
        w.gpu_milli,
        w.priority * w.gpu_milli,
        w.cpu_milli,
        w.host_memory_mib,
        memory_milli_gib(w.memory_gib),
        w.name,
    )


def improve(
    problem: Problem, placements: Sequence[ReplicaPlacement], deadline: float | None = None
) -> tuple[ReplicaPlacement, ...]:
    """The better (placed work, tier 1) of ``placements`` and FGD's plan, each refilled.

    ``placements`` come back unchanged when the problem has rules this module does not
    handle (``unsupported``) or nothing beats them.
    """
    if unsupported(problem):
        return tuple(placements)
    best = tuple(placements)
    best_work = _work(problem, best)
    starts: list[Callable[[], Sequence[ReplicaPlacement]]] = [
        lambda: placements,
        lambda: fgd_place(problem, ("demand",)),
    ]
    for k, start in enumerate(starts):
        if deadline is not None and time.monotonic() > deadline:
            break
        got = refill(problem, start(), deadline=deadline)
        work = _work(problem, got)
        log.info("improve: start %d refilled to work %d (best so far %d)", k, work, best_work)
        if work > best_work:
            best, best_work = got, work
    return best


def _work(problem: Problem, placements: Sequence[ReplicaPlacement]) -> int:
    """Tier 1 (placed work) of the objective, as ``placement.core.objective`` counts it."""
    return evaluate(problem, placements).placed_work
