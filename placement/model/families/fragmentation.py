"""Tier 4: powered nodes + shared GPUs in use."""

from __future__ import annotations

from placement.model.container import Container, ObjectiveTerms
from placement.model.ir import Direction


class Fragmentation:
    name = "fragmentation"
    tier = "soft"

    def add(self, c: Container) -> ObjectiveTerms | None:
        terms = {v: 1 for v in c.o.values()}
        terms.update({v: 1 for v in c.s.values()})
        return ObjectiveTerms("fragmentation", Direction.MINIMIZE, terms)
