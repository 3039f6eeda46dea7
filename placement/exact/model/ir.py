"""A solver-neutral integer linear program: the one model description both backends consume.

Every variable is an integer with finite bounds (a binary is 0..1) and every
coefficient is an integer, so CP-SAT takes the model as it is and CBC sees exact
numbers. Objectives are kept apart, one per tier, highest first; the solve
orchestrator optimises them lexicographically (tier k is optimised with tiers
1..k-1 held at the values already reached).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Sense(enum.Enum):
    LE = "<="
    GE = ">="
    EQ = "=="


class Direction(enum.Enum):
    MAXIMIZE = "max"
    MINIMIZE = "min"


@dataclass
class Constraint:
    name: str  # family and formulation number, e.g. "C4 site_power[s1]"
    var_indices: list[int]
    coefs: list[int]
    sense: Sense
    rhs: int


@dataclass
class Objective:
    name: str  # tier name: placed_work, energy, moves, fragmentation
    direction: Direction
    var_indices: list[int]
    coefs: list[int]
    constant: int = 0

    def value(self, values: list[int]) -> int:
        return self.constant + sum(c * values[i] for i, c in zip(self.var_indices, self.coefs, strict=True))


@dataclass
class IntegerProgram:
    names: list[str] = field(default_factory=list)
    lower: list[int] = field(default_factory=list)
    upper: list[int] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    objectives: list[Objective] = field(default_factory=list)  # tiers, highest first
    hint: dict[int, int] = field(default_factory=dict)  # optional warm start

    @property
    def num_vars(self) -> int:
        return len(self.names)

    def new_var(self, name: str, lb: int, ub: int) -> int:
        if lb > ub:
            raise ValueError(f"empty domain for {name}: [{lb}, {ub}]")
        self.names.append(name)
        self.lower.append(lb)
        self.upper.append(ub)
        return len(self.names) - 1

    def new_bool(self, name: str) -> int:
        return self.new_var(name, 0, 1)

    def add(self, name: str, terms: dict[int, int] | list[tuple[int, int]], sense: Sense, rhs: int) -> None:
        items = terms.items() if isinstance(terms, dict) else terms
        idx: list[int] = []
        cf: list[int] = []
        for i, c in items:
            if c:
                idx.append(i)
                cf.append(int(c))
        self.constraints.append(Constraint(name, idx, cf, sense, int(rhs)))

    def add_objective(
        self,
        name: str,
        direction: Direction,
        terms: dict[int, int] | list[tuple[int, int]],
        constant: int = 0,
    ) -> Objective:
        items = terms.items() if isinstance(terms, dict) else terms
        idx = [i for i, c in items if c]
        cf = [int(c) for _, c in items if c]
        obj = Objective(name, direction, idx, cf, constant)
        self.objectives.append(obj)
        return obj

    def is_feasible(self, values: list[int]) -> list[str]:
        """Names of the bounds and constraints that ``values`` breaks (empty when feasible)."""
        bad = [
            f"bound {self.names[i]}"
            for i, v in enumerate(values)
            if not (self.lower[i] <= v <= self.upper[i])
        ]
        for c in self.constraints:
            lhs = sum(a * values[i] for i, a in zip(c.var_indices, c.coefs, strict=True))
            ok = (
                lhs <= c.rhs if c.sense is Sense.LE else lhs >= c.rhs if c.sense is Sense.GE else lhs == c.rhs
            )
            if not ok:
                bad.append(c.name)
        return bad
