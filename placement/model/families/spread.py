"""C11: a placed workload with spread uses at least min_distinct entities of its level."""

from __future__ import annotations

from placement.candidates import spread_entity
from placement.model.container import Container, ObjectiveTerms
from placement.model.ir import Sense


class Spread:
    name = "spread"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        wl = p.problem.workloads
        by_w: dict[int, dict[int, int]] = {}
        for (w, e), a in sorted(c.a.items()):
            sp = wl[w].spread
            if sp is None:  # a[w, e] exists only for workloads with spread
                continue
            level = sp.level
            r_e = c.replicas_in(w, lambda info, e=e, level=level: spread_entity(info, level) == e)
            # C11a: a[w, e] <= replicas of w in e
            c.program.add(
                f"C11 spread_used[{wl[w].name},{e}]", {**{v: -k for v, k in r_e.items()}, a: 1}, Sense.LE, 0
            )
            by_w.setdefault(w, {})[a] = 1
        for w, terms in sorted(by_w.items()):
            sp = wl[w].spread
            if sp is None:
                continue
            # C11b: sum_e a[w, e] >= min_distinct z[w]
            c.program.add(f"C11 spread[{wl[w].name}]", {**terms, c.z[w]: -sp.min_distinct}, Sense.GE, 0)
        return None
