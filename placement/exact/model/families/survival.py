"""C12: after losing any one site, at least survivors_required replicas remain."""

from __future__ import annotations

from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Sense


class Survival:
    name = "site_survival"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        wl = p.problem.workloads
        for w, z in sorted(c.z.items()):
            need = wl[w].survivors_required
            if need <= 0:
                continue
            sites = sorted({p.nodes[cand.node].site.name for cand in p.by_workload[w]})
            for s in sites:
                # C12: r - r_s = replicas outside s >= need z[w]
                outside = c.replicas_in(w, lambda info, s=s: info.site.name != s)
                c.program.add(f"C12 site_survival[{wl[w].name},{s}]", {**outside, z: -need}, Sense.GE, 0)
        return None
