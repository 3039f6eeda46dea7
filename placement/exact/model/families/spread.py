"""C11: a placed workload with spread uses at least min_distinct entities of its level."""

from __future__ import annotations

from placement.core.candidates import spread_entity
from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Sense


class Spread:
    name = "spread"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        wl = p.problem.workloads
        by_w: dict[int, dict[int, int]] = {}
        for w in sorted({w for w, _ in c.a}):
            sp = wl[w].spread
            if sp is None:  # a[w, e] exists only for workloads with spread
                continue
            r_e: dict[str, dict[int, int]] = {}
            for cand in p.by_workload[w]:
                e = spread_entity(p.nodes[cand.node], sp.level)
                r_e.setdefault(e, {}).update(c.replicas_on(w, cand.node))
            for e, terms in sorted(r_e.items()):
                a = c.a[(w, e)]
                # C11a: a[w, e] <= replicas of w in e
                c.program.add(
                    f"C11 spread_used[{wl[w].name},{e}]", {**{v: -1 for v in terms}, a: 1}, Sense.LE, 0
                )
                by_w.setdefault(w, {})[a] = 1
        for w, terms in sorted(by_w.items()):
            sp = wl[w].spread
            if sp is None:
                continue
            # C11b: sum_e a[w, e] >= min_distinct z[w]
            c.program.add(f"C11 spread[{wl[w].name}]", {**terms, c.z[w]: -sp.min_distinct}, Sense.GE, 0)
        return None
