"""Changes to a fleet and its workloads since the current plan: what a rebalance applies.

``apply_changes(problem, changes) -> Problem`` returns the instance with the changes applied,
in this order: nodes removed, nodes added, node states set (drained, down, back to ready),
workloads removed, workloads added, workloads rescaled. Added nodes and workloads go after the
existing ones, so every index of the input keeps its meaning (``input_path`` maps a path of
the changed instance back to the input or to the change that added the item).

Current replicas (``Workload.current``) follow the changes:

* a replica on a removed node is dropped from ``current``: it runs nowhere the plan could keep it;
* a workload rescaled below the replicas it runs keeps ``max_replicas`` of them, those on READY
  nodes first, so that ``current`` never exceeds ``max_replicas`` (input rule);
* a replica on a drained or down node stays in ``current``: the plan moves it (a forced move).

Every problem is reported at once (``InputError``), each with the path of the offending change
in the proto JSON mapping, e.g. ``changes.drainNodes[1]: unknown node 'x'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from placement.core.domain import CurrentReplica, Node, NodeState, Problem, Workload
from placement.core.errors import FieldError, InputError
from placement.core.validate import quote


@dataclass(frozen=True)
class Rescale:
    """New replica bounds for a workload; a bound left ``None`` keeps its value."""

    workload: str
    min_replicas: int | None = None
    max_replicas: int | None = None


@dataclass(frozen=True)
class FleetChanges:
    """What changed since the current plan (the proto message ``FleetChanges``)."""

    drain_nodes: tuple[str, ...] = ()  # set DRAINING: accepts no replicas, its replicas move
    down_nodes: tuple[str, ...] = ()  # set DOWN
    ready_nodes: tuple[str, ...] = ()  # set READY: back in service
    add_nodes: tuple[Node, ...] = ()
    remove_nodes: tuple[str, ...] = ()  # gone from the fleet; their replicas are evicted
    add_workloads: tuple[Workload, ...] = ()
    remove_workloads: tuple[str, ...] = ()
    rescale_workloads: tuple[Rescale, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.drain_nodes,
                self.down_nodes,
                self.ready_nodes,
                self.add_nodes,
                self.remove_nodes,
                self.add_workloads,
                self.remove_workloads,
                self.rescale_workloads,
            )
        )

    def summary(self) -> str:
        """One line, e.g. "drain 2 nodes, add 1 workload"; "no changes" when empty."""
        parts = []
        for verb, items, noun in (
            ("drain", self.drain_nodes, "node"),
            ("down", self.down_nodes, "node"),
            ("ready", self.ready_nodes, "node"),
            ("add", self.add_nodes, "node"),
            ("remove", self.remove_nodes, "node"),
            ("add", self.add_workloads, "workload"),
            ("remove", self.remove_workloads, "workload"),
            ("rescale", self.rescale_workloads, "workload"),
        ):
            if items:
                parts.append(f"{verb} {len(items)} {noun}{'' if len(items) == 1 else 's'}")
        return ", ".join(parts) or "no changes"


def _want_gpus(w: Workload) -> int:
    return 1 if w.gpus == 0 else w.gpus


def trim_current(w: Workload, nodes: dict[str, Node]) -> Workload:
    """``w`` with only the current replicas that can still run as they are: on a node of the fleet,
    with one valid GPU index per GPU of a replica; at most ``max_replicas``, READY nodes first."""
    keep: list[CurrentReplica] = []
    for c in w.current:
        node = nodes.get(c.node)
        if node is None or len(c.gpu_indices) != _want_gpus(w):
            continue
        if len(set(c.gpu_indices)) != len(c.gpu_indices):
            continue
        if not all(isinstance(g, int) and 0 <= g < node.gpu_count for g in c.gpu_indices):
            continue
        keep.append(c)
    if len(keep) > w.max_replicas >= 0:
        ready = [c for c in keep if nodes[c.node].state is NodeState.READY]
        other = [c for c in keep if nodes[c.node].state is not NodeState.READY]
        keep = (ready + other)[: w.max_replicas]
    if tuple(keep) == w.current:
        return w
    return replace(w, current=tuple(keep))


def _names(
    errors: list[FieldError], path: str, names: tuple[str, ...], known: set[str], what: str
) -> list[str]:
    out = []
    for i, name in enumerate(names):
        if name not in known:
            errors.append(FieldError(f"{path}[{i}]", f"unknown {what} {quote(name)}"))
        else:
            out.append(name)
    return out


def _added(
    errors: list[FieldError], path: str, names: list[str], known: set[str], removed: set[str], what: str
) -> set[str]:
    """The names of things added: each given, added once, and new (or removed by the same changes);
    returns them."""
    added: set[str] = set()
    for i, name in enumerate(names):
        where = f"{path}[{i}].name"
        if not name:
            errors.append(FieldError(where, "is required"))
        elif name in added:
            errors.append(FieldError(where, f"{what} {quote(name)} is added twice"))
        elif name in known and name not in removed:
            errors.append(
                FieldError(where, f"{what} {quote(name)} already exists; remove it first to replace it")
            )
        added.add(name)
    return added


def change_errors(problem: Problem, changes: FleetChanges) -> list[FieldError]:
    """Every problem with ``changes`` against ``problem`` (paths under ``changes.``)."""
    errors: list[FieldError] = []
    nodes = {n.name for n in problem.fleet.nodes}
    workloads = {w.name for w in problem.workloads}
    where: dict[str, str] = {}  # node -> the first change that names it
    for field_path, names in (
        ("changes.removeNodes", changes.remove_nodes),
        ("changes.drainNodes", changes.drain_nodes),
        ("changes.downNodes", changes.down_nodes),
        ("changes.readyNodes", changes.ready_nodes),
    ):
        for i, name in enumerate(names):
            path = f"{field_path}[{i}]"
            if name not in nodes:
                errors.append(FieldError(path, f"unknown node {quote(name)}"))
            elif name in where:
                errors.append(FieldError(path, f"node {quote(name)} is also in {where[name]}"))
            else:
                where[name] = path
    _added(
        errors,
        "changes.addNodes",
        [n.name for n in changes.add_nodes],
        nodes,
        set(changes.remove_nodes),
        "node",
    )
    gone = set(_names(errors, "changes.removeWorkloads", changes.remove_workloads, workloads, "workload"))
    new = _added(
        errors, "changes.addWorkloads", [w.name for w in changes.add_workloads], workloads, gone, "workload"
    )
    by_name = {w.name: w for w in problem.workloads}
    by_name.update({w.name: w for w in changes.add_workloads})
    rescaled: set[str] = set()
    for i, r in enumerate(changes.rescale_workloads):
        path = f"changes.rescaleWorkloads[{i}]"
        if r.workload in rescaled:
            errors.append(FieldError(f"{path}.workload", f"workload {quote(r.workload)} is rescaled twice"))
            continue
        rescaled.add(r.workload)
        if r.workload not in by_name or (r.workload in gone and r.workload not in new):
            errors.append(FieldError(f"{path}.workload", f"unknown workload {quote(r.workload)}"))
            continue
        if r.min_replicas is None and r.max_replicas is None:
            errors.append(FieldError(path, "give minReplicas, maxReplicas or both"))
            continue
        w = by_name[r.workload]
        lo = w.min_replicas if r.min_replicas is None else r.min_replicas
        hi = w.max_replicas if r.max_replicas is None else r.max_replicas
        for name, value in (("minReplicas", r.min_replicas), ("maxReplicas", r.max_replicas)):
            if value is not None and value < 1:
                errors.append(FieldError(f"{path}.{name}", f"must be at least 1, got {value}"))
        if lo > hi >= 1:
            errors.append(FieldError(path, f"min replicas {lo} exceed max replicas {hi}"))
    return errors


def apply_changes(problem: Problem, changes: FleetChanges) -> Problem:
    """The instance with ``changes`` applied (see the module docstring); ``InputError`` lists every
    problem with the changes. The result is not validated as a whole: ``replan`` does that."""
    errors = change_errors(problem, changes)
    if errors:
        raise InputError(errors)
    if changes.empty:
        return problem
    removed = set(changes.remove_nodes)
    state = {n: NodeState.DRAINING for n in changes.drain_nodes}
    state.update({n: NodeState.DOWN for n in changes.down_nodes})
    state.update({n: NodeState.READY for n in changes.ready_nodes})
    nodes = [n for n in problem.fleet.nodes if n.name not in removed] + list(changes.add_nodes)
    nodes = [replace(n, state=state[n.name]) if n.name in state else n for n in nodes]
    fleet = replace(problem.fleet, nodes=tuple(nodes))
    node_by_name = {n.name: n for n in nodes}
    gone = set(changes.remove_workloads)
    workloads = [w for w in problem.workloads if w.name not in gone] + list(changes.add_workloads)
    rescale = {r.workload: r for r in changes.rescale_workloads}
    out = []
    for w in workloads:
        if removed:  # a replica on a removed node runs nowhere the plan could keep it
            w = replace(w, current=tuple(c for c in w.current if c.node not in removed))
        r = rescale.get(w.name)
        if r is not None:
            w = replace(
                w,
                min_replicas=w.min_replicas if r.min_replicas is None else r.min_replicas,
                max_replicas=w.max_replicas if r.max_replicas is None else r.max_replicas,
            )
            w = trim_current(w, node_by_name)
        out.append(w)
    return replace(problem, fleet=fleet, workloads=tuple(out))


def input_path(problem: Problem, changes: FleetChanges, path: str) -> str:
    """A field path of ``apply_changes(problem, changes)`` as the user wrote it: an item the changes
    added maps to ``changes.addNodes[k]`` / ``changes.addWorkloads[k]``, a kept one to its index in
    ``problem``."""

    removed = set(changes.remove_nodes)
    gone = set(changes.remove_workloads)
    kept_nodes = [i for i, n in enumerate(problem.fleet.nodes) if n.name not in removed]
    kept_workloads = [i for i, w in enumerate(problem.workloads) if w.name not in gone]
    for prefix, kept, added in (
        ("fleet.nodes", kept_nodes, "changes.addNodes"),
        ("workloads", kept_workloads, "changes.addWorkloads"),
    ):
        m = re.match(re.escape(prefix) + r"\[(\d+)\](.*)$", path, flags=re.S)
        if m is None:
            continue
        j, rest = int(m.group(1)), m.group(2)
        if j < len(kept):
            return f"{prefix}[{kept[j]}]{rest}"
        return f"{added}[{j - len(kept)}]{rest}"
    return path
