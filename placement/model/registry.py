"""The ordered registry of constraint families: hard rules first, then the objective tiers."""

from __future__ import annotations

from typing import Protocol

from placement.model.container import Container, ObjectiveTerms
from placement.model.families.capacity import Capacity
from placement.model.families.energy import Energy
from placement.model.families.fragmentation import Fragmentation
from placement.model.families.power import Power
from placement.model.families.replicas import Replicas
from placement.model.families.spread import Spread
from placement.model.families.stability import Stability
from placement.model.families.survival import Survival
from placement.model.families.work import PlacedWork


class Family(Protocol):
    name: str
    tier: str  # "hard" or "soft"

    def add(self, container: Container) -> ObjectiveTerms | None: ...


# Soft families are listed in objective order: tier 1 first.
FAMILIES: tuple[Family, ...] = (
    Capacity(),
    Power(),
    Replicas(),
    Spread(),
    Survival(),
    PlacedWork(),
    Energy(),
    Stability(),
    Fragmentation(),
)

TIERS = ("placed_work", "energy", "moves", "fragmentation")
