"""C10: all or nothing, min_replicas z <= r <= max_replicas z."""

from __future__ import annotations

from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Sense


class Replicas:
    name = "replicas"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        wl = c.prepared.problem.workloads
        for w, z in sorted(c.z.items()):
            r = c.replicas_of(w)
            ip = c.program
            ip.add(f"C10 min_replicas[{wl[w].name}]", {**r, z: -wl[w].min_replicas}, Sense.GE, 0)
            ip.add(f"C10 max_replicas[{wl[w].name}]", {**r, z: -wl[w].max_replicas}, Sense.LE, 0)
        return None
