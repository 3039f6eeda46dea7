"""C7: IT draw of every power domain and every site within its usable power."""

from __future__ import annotations

from collections import defaultdict

from placement.model.container import Container, ObjectiveTerms, add_terms
from placement.model.ir import Sense


class Power:
    name = "power"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        by_domain: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        by_site: dict[str, dict[int, int]] = defaultdict(dict)
        for n in c.candidate_nodes():
            info = p.nodes[n]
            terms = c.node_power_terms(n)
            add_terms(by_domain[info.domain_key], terms)
            add_terms(by_site[info.site.name], terms)
        for key, terms in sorted(by_domain.items()):
            cap = p.domains[key].usable_power_w
            if _max_draw(c, terms) > cap:
                c.program.add(f"C7 domain_power[{key[0]}/{key[1]}]", terms, Sense.LE, cap)
        for name, terms in sorted(by_site.items()):
            cap = p.sites[name].usable_power_w
            if _max_draw(c, terms) > cap:
                c.program.add(f"C7 site_power[{name}]", terms, Sense.LE, cap)
        return None


def _max_draw(c: Container, terms: dict[int, int]) -> int:
    """An upper bound on the draw, to skip constraints that can never bind."""
    ip = c.program
    return sum(max(coef * ip.lower[v], coef * ip.upper[v]) for v, coef in terms.items())
