"""The ordered registry of constraint families: hard rules first, then the objective tiers."""

from __future__ import annotations

from typing import Protocol

from placement.core.domain import Problem
from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.families.blast import BlastRadius
from placement.exact.model.families.capacity import Capacity
from placement.exact.model.families.disruption import Disruption
from placement.exact.model.families.energy import Energy
from placement.exact.model.families.fragmentation import Fragmentation
from placement.exact.model.families.power import Power
from placement.exact.model.families.replicas import Replicas
from placement.exact.model.families.spread import Spread
from placement.exact.model.families.stability import Stability
from placement.exact.model.families.survival import Survival
from placement.exact.model.families.work import PlacedWork


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
    BlastRadius(),
    Disruption(),
    PlacedWork(),
    Energy(),
    Stability(),
    Fragmentation(),
)

TIERS = ("placed_work", "energy", "moves", "fragmentation")  # the order of ``ObjectiveTiers``
REPLAN_TIERS = ("placed_work", "moves", "energy", "fragmentation")


def tiers_for(problem: Problem) -> tuple[str, ...]:
    """The tiers in objective order: with running replicas (current, not pinned) moves rank above
    energy and fragmentation (issue 15: a re-plan keeps what runs unless placed work earns the
    move; ``Workload.move_cost`` weighs one workload's moves against another's)."""
    return REPLAN_TIERS if any(w.running for w in problem.workloads) else TIERS
