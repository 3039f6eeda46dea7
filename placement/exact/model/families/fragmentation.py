"""Tier 4: powered nodes + shared GPUs in use."""

from __future__ import annotations

from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Direction


class Fragmentation:
    name = "fragmentation"
    tier = "soft"

    def add(self, c: Container) -> ObjectiveTerms | None:
        terms = {v: 1 for v in c.o.values()}
        terms.update({v: 1 for v in c.s.values()})
        # pinned: their shared GPUs, and their nodes outside the model (inside, o[n] is held at 1)
        const = sum(c.pinned_shared.values()) + sum(1 for n in c.pinned_used if n not in c.o)
        return ObjectiveTerms("fragmentation", Direction.MINIMIZE, terms, const)
