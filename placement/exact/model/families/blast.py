"""C16: the blast radius (rule 16), at most kn_w replicas of a workload on one node and kd_w in one
power domain (``Workload.max_per_node``, ``max_per_power_domain``; 0: no limit).

C16a  r_{w,n} <= kn_w                    for every candidate node n of w
C16b  sum_{n in N(d)} r_{w,n} <= kd_w     for every power domain d holding a candidate of w

A row whose variables cannot exceed the cap at their bounds is omitted (the filter already caps
each node's count at min(max_replicas, kn_w, kd_w), so C16a binds only across power levels or
shared slots). The node-group LP (``placement.bounds.bound``) relaxes the same rule per group
and per power domain.
"""

from __future__ import annotations

from collections import defaultdict

from placement.exact.model.container import Container, ObjectiveTerms, Terms, add_terms
from placement.exact.model.ir import Sense


class BlastRadius:
    name = "blast_radius"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        wl = p.problem.workloads
        ip = c.program
        for w in sorted(c.z):
            wk = wl[w]
            if not wk.capped:
                continue
            by_domain: dict[tuple[str, str], Terms] = defaultdict(dict)
            for cand in p.by_workload[w]:
                terms = c.replicas_on(w, cand.node)
                info = p.nodes[cand.node]
                if wk.max_per_node and _most(c, terms) > wk.max_per_node:
                    ip.add(f"C16 max_per_node[{wk.name},{info.node.name}]", terms, Sense.LE, wk.max_per_node)
                add_terms(by_domain[info.domain_key], terms)
            if not wk.max_per_power_domain:
                continue
            for (site, domain), terms in sorted(by_domain.items()):
                if _most(c, terms) > wk.max_per_power_domain:
                    ip.add(
                        f"C16 max_per_power_domain[{wk.name},{site}/{domain}]",
                        terms,
                        Sense.LE,
                        wk.max_per_power_domain,
                    )
        return None


def _most(c: Container, terms: Terms) -> int:
    """The most replicas ``terms`` can count at their variables' bounds."""
    return sum(coef * c.program.upper[v] for v, coef in terms.items())
