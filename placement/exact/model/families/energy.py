"""Tier 2: facility energy, sum over sites of energy_coefficient(site) * site IT watts."""

from __future__ import annotations

from placement.core.energy import energy_coefficient
from placement.exact.model.container import Container, ObjectiveTerms, add_terms
from placement.exact.model.ir import Direction


class Energy:
    name = "energy"
    tier = "soft"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        metric = p.problem.options.energy_metric
        terms: dict[int, int] = {}
        for n in c.candidate_nodes():
            coef = energy_coefficient(p.nodes[n].site, metric)
            if coef:
                add_terms(terms, c.node_power_terms(n), coef)
        const = sum(energy_coefficient(p.nodes[n].site, metric) * c.pinned_draw_w(n) for n in c.pinned_used)
        return ObjectiveTerms("energy", Direction.MINIMIZE, terms, const)
