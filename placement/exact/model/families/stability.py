"""C13 and tier 3: kept replicas k[w, n] <= replicas of w on n; moves = current total - sum k."""

from __future__ import annotations

from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Direction, Sense


class Stability:
    name = "moves"
    tier = "soft"

    def add(self, c: Container) -> ObjectiveTerms | None:
        wl = c.prepared.problem.workloads
        nodes = c.prepared.nodes
        for (w, n), k in sorted(c.k.items()):
            terms = {v: -1 for v in c.replicas_on(w, n)}
            terms[k] = 1
            c.program.add(f"C13 kept[{wl[w].name},{nodes[n].node.name}]", terms, Sense.LE, 0)
        current_total = sum(len(w.current) for w in wl) - c.pinned_current  # pinned replicas stay
        return ObjectiveTerms("moves", Direction.MINIMIZE, {k: -1 for k in c.k.values()}, current_total)
