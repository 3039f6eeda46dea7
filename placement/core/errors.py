"""The library's exception hierarchy. The server maps these to status codes in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with the input: the path of the offending field and why.

    Paths use the protobuf JSON names of the ``placement.v1`` messages, e.g.
    ``fleet.nodes[3].powerDomain`` or ``workloads[0].maxReplicas``.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PlacementError(Exception):
    """Base of every error the library raises on purpose."""


class InputError(PlacementError):
    """The input is invalid; carries every problem found, all at once."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]):
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid input")


class PlanRejected(PlacementError):
    """A plan failed the verifier; it must never leave the library. A bug, not bad input."""

    def __init__(self, violations: list[object]):
        self.violations = tuple(violations)
        super().__init__("plan failed verification: " + "; ".join(str(v) for v in violations[:10]))
