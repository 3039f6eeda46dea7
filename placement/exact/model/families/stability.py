"""C13 and the moves tier: kept replicas k[w, n] <= replicas of w on n; moves = sum over w of
move_cost_w * (current replicas of w - sum_n k[w, n])."""

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
        # pinned replicas stay (never moves)
        current_total = sum(w.move_cost * len(w.current) for w in wl if not w.pinned)
        terms = {k: -wl[w].move_cost for (w, _n), k in c.k.items() if wl[w].move_cost}
        return ObjectiveTerms("moves", Direction.MINIMIZE, terms, current_total)
