"""From counts to replicas with GPU indices, and back.

* ``decode(container, counts)``: the model's counts become ``ReplicaPlacement``s. A
  replica kept on its current node keeps its current GPU indices where they are free;
  shared slots take a GPU that a current fractional replica of theirs used where possible;
  replicas beside pinned fractional ones (``Counts.beside_pinned``) take that pinned GPU.
* ``encode(container, placements)``: a plan becomes a value vector of the model (the
  warm start), or None when the plan does not fit the model's variables.

The running state of a plan, ``FleetState``, lives in ``placement.core.state``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable

from placement.core.candidates import Prepared, spread_entity
from placement.core.domain import ReplicaPlacement, current_cap_w
from placement.core.state import FULL_MILLI, number_rows
from placement.exact.model.container import Container, Counts

__all__ = ["decode", "encode"]

log = logging.getLogger(__name__)


def _current_indices(p: Prepared, w: int, n: int) -> list[tuple[int, ...]]:
    name = p.nodes[n].node.name
    return [tuple(cr.gpu_indices) for cr in p.problem.workloads[w].current if cr.node == name]


def decode(c: Container, counts: Counts) -> tuple[ReplicaPlacement, ...]:
    """Counts to replicas with GPU indices (C4 guarantees the indices suffice)."""
    p = c.prepared
    wl = p.problem.workloads
    rows: list[tuple[int, int, tuple[int, ...], int, int]] = []
    whole_by_node: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for (w, n, li), cnt in sorted(counts.whole.items()):
        whole_by_node[n].append((w, li, cnt))
    shared_by_node: dict[int, list[dict[int, int]]] = defaultdict(list)
    for (n, _j), tenants in sorted(counts.shared.items()):
        shared_by_node[n].append(tenants)
    for w in p.pinned:  # pinned replicas exactly as they run, at their recorded caps
        for cr in wl[w].current:
            n = p.node_index[cr.node]
            cap = current_cap_w(wl[w], cr, p.nodes[n].gpu)
            milli = wl[w].gpu_milli if wl[w].is_fractional else FULL_MILLI
            rows.append((w, n, tuple(cr.gpu_indices), milli, cap))
    for (n, j), tenants in sorted(counts.beside_pinned.items()):  # on the GPU the pinned shares hold
        gpu = p.nodes[n].gpu
        for w, cnt in sorted(tenants.items()):
            rows.extend((w, n, (j,), wl[w].gpu_milli, gpu.max_power_w) for _ in range(cnt))
    for n in sorted(set(whole_by_node) | set(shared_by_node)):
        gpu = p.nodes[n].gpu
        count = p.nodes[n].node.gpu_count
        taken: set[int] = set(c.pinned_used.get(n, ()))
        todo: list[tuple[int, int, int]] = []  # (w, level, replicas still without indices)
        # kept whole replicas first, on their current indices
        for w, li, cnt in whole_by_node.get(n, []):
            cap = gpu.power_levels[li].power_cap_w
            left = cnt
            for idx in _current_indices(p, w, n):
                if left == 0:
                    break
                ok = len(idx) == wl[w].gpus and len(set(idx)) == len(idx)
                if ok and all(0 <= j < count and j not in taken for j in idx):
                    taken.update(idx)
                    rows.append((w, n, tuple(sorted(idx)), FULL_MILLI, cap))
                    left -= 1
            todo.append((w, li, left))
        # shared slots: a GPU a current tenant used, where free
        slot_gpu: list[int | None] = []
        for tenants in shared_by_node.get(n, []):
            choice = None
            for w in sorted(tenants):
                for idx in _current_indices(p, w, n):
                    if len(idx) == 1 and 0 <= idx[0] < count and idx[0] not in taken:
                        choice = idx[0]
                        break
                if choice is not None:
                    break
            if choice is not None:
                taken.add(choice)
            slot_gpu.append(choice)
        free = [j for j in range(count) if j not in taken]
        for w, li, left in todo:
            cap = gpu.power_levels[li].power_cap_w
            for _ in range(left):
                idx = tuple(free[: wl[w].gpus])
                del free[: wl[w].gpus]
                rows.append((w, n, idx, FULL_MILLI, cap))
        for tenants, choice in zip(shared_by_node.get(n, []), slot_gpu, strict=True):
            j = choice if choice is not None else free.pop(0)
            for w, cnt in sorted(tenants.items()):
                rows.extend((w, n, (j,), wl[w].gpu_milli, gpu.max_power_w) for _ in range(cnt))
    return number_rows(p, rows)


def encode(c: Container, placements: Iterable[ReplicaPlacement]) -> list[int] | None:
    """The model's value vector of a plan, or None when the plan does not fit the variables."""
    p = c.prepared
    wi = {w.name: i for i, w in enumerate(p.problem.workloads)}
    values = [0] * c.program.num_vars
    on_node: Counter[tuple[int, int]] = Counter()
    shared: dict[int, dict[int, Counter[int]]] = defaultdict(lambda: defaultdict(Counter))
    pinned = set(p.pinned)
    for pl in placements:
        w, n = wi[pl.workload], p.node_index[pl.node]
        if w in pinned:
            continue  # constants, no variables
        on_node[(w, n)] += 1
        if p.problem.workloads[w].is_fractional:
            shared[n][pl.gpu_indices[0]][w] += 1
            continue
        levels = p.nodes[n].gpu.power_levels
        li = next((i for i, lv in enumerate(levels) if lv.power_cap_w == pl.power_cap_w), -1)
        v = c.y.get((w, n, li))
        if v is None:
            return None
        values[v] += 1
    for n, gpus in shared.items():
        beside = set(gpus) & c.pinned_used.get(n, set())
        for gpu_index in beside:  # beside pinned fractional replicas: the v variables
            for w, cnt in gpus.pop(gpu_index).items():
                vv = c.v.get((w, n, gpu_index))
                if vv is None:
                    return None
                values[vv] = cnt
        for j, gpu_index in enumerate(sorted(gpus)):
            sv = c.s.get((n, j))
            if sv is None:
                return None
            values[sv] = 1
            for w, cnt in gpus[gpu_index].items():
                uv = c.u.get((w, n, j))
                if uv is None:
                    return None
                values[uv] = cnt
    for (w, n), cnt in on_node.items():
        if n not in c.o or w not in c.z:
            return None
        values[c.o[n]] = 1
        values[c.z[w]] = 1
        kv = c.k.get((w, n))
        if kv is not None:
            values[kv] = min(cnt, p.current.get((w, n), 0))
    for (w, e), av in c.a.items():
        sp = p.problem.workloads[w].spread
        if sp is not None and any(spread_entity(p.nodes[n], sp.level) == e for (w2, n) in on_node if w2 == w):
            values[av] = 1
    return values
