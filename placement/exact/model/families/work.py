"""Tier 1: placed work, sum of priority * work_milli * throughput_pct over placed replicas, less the
price of the moves where moves are priced (``Problem.moves_priced``): each kept current replica
k[w, n] earns back its price ``Workload.move_price_per_replica``, the constant pays for every
current replica (net work = placed work - price of the moved ones)."""

from __future__ import annotations

from placement.core.energy import replica_work
from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Direction


class PlacedWork:
    name = "placed_work"
    tier = "soft"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        wl = p.problem.workloads
        terms: dict[int, int] = {}
        for (w, n, li), v in c.y.items():
            terms[v] = replica_work(wl[w], p.nodes[n].gpu.power_levels[li].relative_throughput_pct)
        for (w, n, _j), v in (*c.u.items(), *c.v.items()):
            levels = p.nodes[n].gpu.power_levels
            terms[v] = replica_work(wl[w], levels[-1].relative_throughput_pct if levels else 0)
        constant = c.pinned_work
        if p.problem.moves_priced:
            for (w, _n), k in c.k.items():
                terms[k] = terms.get(k, 0) + wl[w].move_price_per_replica
            constant -= sum(w.move_price_per_replica * len(w.current) for w in wl if w.running)
        return ObjectiveTerms("placed_work", Direction.MAXIMIZE, terms, constant)
