"""GPU fleet placement: place inference workloads on GPUs under power caps, with a verified plan.

Public API:

* ``solve(problem, progress=None, stop=None) -> Plan``: the whole pipeline, time-boxed
  by ``problem.options.time_limit_s``; every returned plan has passed the verifier.
* ``verify(problem, plan) -> list[Violation]``: the independent checker (no solver).
* ``validate(problem) -> list[FieldError]``: every input problem at once.
* ``explain(problem, workload, site=None) -> list[Reason]``: why a workload cannot run.

The four functions share their names with their modules; importing them here, eagerly,
binds the package attributes to the functions (solver libraries are still imported
only when ``solve`` runs).
"""

from __future__ import annotations

from placement.core.explain import explain
from placement.core.validate import validate
from placement.core.verify import verify
from placement.run.solve import solve

__all__ = ["explain", "solve", "validate", "verify"]
