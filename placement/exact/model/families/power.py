"""C7: IT draw of every power domain and every site within its usable power."""

from __future__ import annotations

from collections import defaultdict

from placement.exact.model.container import Container, ObjectiveTerms, add_terms
from placement.exact.model.ir import Sense


class Power:
    name = "power"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        by_domain: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
        by_site: dict[str, dict[int, int]] = defaultdict(dict)
        const_domain: dict[tuple[str, str], int] = defaultdict(int)
        const_site: dict[str, int] = defaultdict(int)
        for n in c.candidate_nodes():
            info = p.nodes[n]
            terms = c.node_power_terms(n)
            add_terms(by_domain[info.domain_key], terms)
            add_terms(by_site[info.site.name], terms)
        for n in c.pinned_used:  # pinned replicas draw as constants
            info = p.nodes[n]
            const_domain[info.domain_key] += c.pinned_draw_w(n)
            const_site[info.site.name] += c.pinned_draw_w(n)
        for key, terms in sorted(by_domain.items()):
            cap = p.domains[key].usable_power_w - const_domain[key]
            if _max_draw(c, terms) > cap:
                c.program.add(f"C7 domain_power[{key[0]}/{key[1]}]", terms, Sense.LE, cap)
        for name, terms in sorted(by_site.items()):
            cap = p.sites[name].usable_power_w - const_site[name]
            if _max_draw(c, terms) > cap:
                c.program.add(f"C7 site_power[{name}]", terms, Sense.LE, cap)
        return None


def _max_draw(c: Container, terms: dict[int, int]) -> int:
    """An upper bound on the draw, to skip constraints that can never bind."""
    ip = c.program
    return sum(max(coef * ip.lower[v], coef * ip.upper[v]) for v, coef in terms.items())
