"""Conversion between the ``placement.v1`` protobuf messages and the domain types.

This is the only module that converts, in both directions. The library
(``placement/``) never sees a protobuf message.

Defaults applied when reading a request (they are also documented in the proto):

* an enum left at ``*_UNSPECIFIED`` reads as the domain default: ``SiteKind.DATACENTER``,
  ``Redundancy.N``, ``NodeState.READY``, ``Backend.ORTOOLS``, ``EnergyMetric.COST``;
  ``Spread.level`` has no default and UNSPECIFIED there is an input error;
* ``Site.modules`` / ``PowerDomain.modules`` absent: 2;
* ``Workload.gpus`` absent: 0 when ``gpu_milli`` is set (non-zero), else 1;
  ``min_replicas`` absent: 1; ``max_replicas`` absent: ``min_replicas``; ``priority`` absent: 1;
* ``SolveOptions`` absent, or any of its ``optional`` fields absent: the ``SolveOptions``
  dataclass default (30 s, 2 workers, every soft tier on).

Reading a plan: ``SolveInfo.status`` UNSPECIFIED reads as FEASIBLE (a plan from outside, not
proven optimal) and ``stop_reason`` UNSPECIFIED as NONE.

Writing always sets every field explicitly, so that problem -> request -> problem and
plan -> proto -> plan are the identity.

Values are not checked here beyond what the domain types need to exist (enum values);
``placement.validate`` reports every other problem, with the same field paths.
"""

from __future__ import annotations

import enum
import logging
import re
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from placement.changes import FleetChanges, Rescale
from placement.core import domain as d
from placement.core.errors import FieldError, InputError
from placement.diff import PlanDiff
from placement.exact.backends.base import Progress as DomainProgress
from placement.gate import GateFailure
from wire.gen.placement.v1 import placement_pb2 as pb

log = logging.getLogger(__name__)

E = TypeVar("E", bound=enum.Enum)


class PlanRecordLike(Protocol):
    """What ``record_to_proto`` needs of a plan store's record (``fleetplace.store.PlanRecord``)."""

    @property
    def id(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def requested_by(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def current(self) -> bool: ...
    @property
    def parent_id(self) -> int | None: ...
    @property
    def input_digest(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def bound(self) -> float | None: ...
    @property
    def gap(self) -> float | None: ...
    @property
    def placed_work(self) -> int: ...
    @property
    def energy(self) -> int: ...
    @property
    def moves(self) -> int: ...
    @property
    def fragmentation(self) -> int: ...
    @property
    def move_price(self) -> int: ...
    @property
    def replicas(self) -> int: ...
    @property
    def unplaced_workloads(self) -> int: ...
    @property
    def wall_s(self) -> float: ...
    @property
    def code_revision(self) -> str: ...
    @property
    def changes(self) -> str: ...


class ViolationLike(Protocol):
    """What ``violation_to_proto`` needs of a verifier violation."""

    @property
    def rule(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def message(self) -> str: ...


# --------------------------------------------------------------------------- enums


def enum_prefix(enum_cls: type[enum.Enum]) -> str:
    """Prefix of a domain enum's values in the proto: ``SiteKind`` -> ``SITE_KIND_``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_cls.__name__).upper() + "_"


def enum_to_proto(value: enum.Enum) -> Any:
    """The proto enum number of a domain enum member (by name, ``Redundancy.N`` -> ``REDUNDANCY_N``)."""
    pb_enum = getattr(pb, type(value).__name__)
    return int(pb_enum.Value(enum_prefix(type(value)) + value.name))


class _Reader:
    """Collects conversion problems so that all of them are reported at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def enum(self, enum_cls: type[E], number: int, path: str, default: E | None) -> E:
        """The domain member for a proto enum number; UNSPECIFIED gives ``default``."""
        pb_enum = getattr(pb, enum_cls.__name__)
        prefix = enum_prefix(enum_cls)
        try:
            name = pb_enum.Name(number)
        except ValueError:
            name = ""
        if name == prefix + "UNSPECIFIED" and default is not None:
            return default
        if name.startswith(prefix) and name[len(prefix) :] in enum_cls.__members__:
            return enum_cls[name[len(prefix) :]]
        choices = ", ".join(prefix + m for m in enum_cls.__members__)
        if name == prefix + "UNSPECIFIED":
            self.errors.append(FieldError(path, f"is required, one of {choices}"))
        else:
            self.errors.append(FieldError(path, f"unknown value {number}, expected one of {choices}"))
        # a placeholder so that conversion can go on and report everything
        return next(iter(enum_cls))


# ------------------------------------------------------------------- request -> domain


def _power_level(m: pb.PowerLevel) -> d.PowerLevel:
    return d.PowerLevel(
        power_cap_w=int(m.power_cap_w), relative_throughput_pct=int(m.relative_throughput_pct)
    )


def _gpu_type(m: pb.GpuType) -> d.GpuType:
    return d.GpuType(
        name=m.name,
        memory_gib=float(m.memory_gib),
        max_power_w=int(m.max_power_w),
        min_power_cap_w=int(m.min_power_cap_w),
        idle_power_w=int(m.idle_power_w),
        power_levels=tuple(_power_level(x) for x in m.power_levels),
        shareable=bool(m.shareable),
    )


def _site(r: _Reader, m: pb.Site, path: str) -> d.Site:
    return d.Site(
        name=m.name,
        kind=r.enum(d.SiteKind, m.kind, f"{path}.kind", d.SiteKind.DATACENTER),
        region=m.region,
        capacity_kw=float(m.capacity_kw),
        pue=float(m.pue),
        redundancy=r.enum(d.Redundancy, m.redundancy, f"{path}.redundancy", d.Redundancy.N),
        modules=int(m.modules) if m.HasField("modules") else 2,
        battery_minutes=float(m.battery_minutes),
        has_generator=bool(m.has_generator),
        energy_price_per_kwh=float(m.energy_price_per_kwh),
        carbon_g_per_kwh=float(m.carbon_g_per_kwh),
    )


def _power_domain(r: _Reader, m: pb.PowerDomain, path: str) -> d.PowerDomain:
    return d.PowerDomain(
        name=m.name,
        site=m.site,
        capacity_kw=float(m.capacity_kw),
        redundancy=r.enum(d.Redundancy, m.redundancy, f"{path}.redundancy", d.Redundancy.N),
        modules=int(m.modules) if m.HasField("modules") else 2,
    )


def _node(r: _Reader, m: pb.Node, path: str) -> d.Node:
    return d.Node(
        name=m.name,
        site=m.site,
        power_domain=m.power_domain,
        gpu_type=m.gpu_type,
        gpu_count=int(m.gpu_count),
        host_power_w=int(m.host_power_w),
        state=r.enum(d.NodeState, m.state, f"{path}.state", d.NodeState.READY),
        cpu_milli=int(m.cpu_milli),
        host_memory_mib=int(m.host_memory_mib),
    )


def _fleet(r: _Reader, m: pb.Fleet) -> d.Fleet:
    return d.Fleet(
        gpu_types=tuple(_gpu_type(x) for x in m.gpu_types),
        sites=tuple(_site(r, x, f"fleet.sites[{i}]") for i, x in enumerate(m.sites)),
        power_domains=tuple(
            _power_domain(r, x, f"fleet.powerDomains[{i}]") for i, x in enumerate(m.power_domains)
        ),
        nodes=tuple(_node(r, x, f"fleet.nodes[{i}]") for i, x in enumerate(m.nodes)),
        regions=tuple(m.regions),
        links=tuple(d.Link(a=x.a, b=x.b, latency_ms=float(x.latency_ms)) for x in m.links),
    )


def _workload(r: _Reader, m: pb.Workload, path: str) -> d.Workload:
    # absent gpus: a fractional replica when gpu_milli is set, else one whole GPU
    gpus = int(m.gpus) if m.HasField("gpus") else (0 if m.gpu_milli != 0 else 1)
    min_replicas = int(m.min_replicas) if m.HasField("min_replicas") else 1
    spread = None
    if m.HasField("spread"):
        spread = d.Spread(
            level=r.enum(d.SpreadLevel, m.spread.level, f"{path}.spread.level", None),
            min_distinct=int(m.spread.min_distinct),
        )
    return d.Workload(
        name=m.name,
        gpus=gpus,
        gpu_milli=int(m.gpu_milli),
        memory_gib=float(m.memory_gib),
        allowed_gpu_types=tuple(m.allowed_gpu_types),
        min_replicas=min_replicas,
        max_replicas=int(m.max_replicas) if m.HasField("max_replicas") else min_replicas,
        spread=spread,
        survive_site_loss_pct=int(m.survive_site_loss_pct),
        backup_minutes=float(m.backup_minutes),
        user_region=m.user_region,
        max_latency_ms=float(m.max_latency_ms),
        priority=int(m.priority) if m.HasField("priority") else 1,
        min_power_cap_pct=int(m.min_power_cap_pct),
        cpu_milli=int(m.cpu_milli),
        host_memory_mib=int(m.host_memory_mib),
        current=tuple(
            d.CurrentReplica(
                node=c.node, gpu_indices=tuple(int(g) for g in c.gpu_indices), power_cap_w=int(c.power_cap_w)
            )
            for c in m.current
        ),
        pinned=bool(m.pinned),
        move_cost=int(m.move_cost) if m.HasField("move_cost") else 1,
        max_unavailable_count=(int(m.max_unavailable_count) if m.HasField("max_unavailable_count") else None),
        max_unavailable_pct=int(m.max_unavailable_pct) if m.HasField("max_unavailable_pct") else None,
        max_per_node=int(m.max_per_node),
        max_per_power_domain=int(m.max_per_power_domain),
    )


def _options(r: _Reader, m: pb.SolveOptions) -> d.SolveOptions:
    base = d.SolveOptions()
    return d.SolveOptions(
        backend=r.enum(d.Backend, m.backend, "options.backend", base.backend),
        time_limit_s=float(m.time_limit_s) if m.HasField("time_limit_s") else base.time_limit_s,
        seed=int(m.seed),
        workers=int(m.workers) if m.HasField("workers") else base.workers,
        energy_metric=r.enum(d.EnergyMetric, m.energy_metric, "options.energyMetric", base.energy_metric),
        optimise_energy=bool(m.optimise_energy) if m.HasField("optimise_energy") else base.optimise_energy,
        optimise_moves=bool(m.optimise_moves) if m.HasField("optimise_moves") else base.optimise_moves,
        optimise_fragmentation=(
            bool(m.optimise_fragmentation)
            if m.HasField("optimise_fragmentation")
            else base.optimise_fragmentation
        ),
        deterministic=bool(m.deterministic),
        max_moves=int(m.max_moves) if m.HasField("max_moves") else None,
        max_moves_per_site=int(m.max_moves_per_site) if m.HasField("max_moves_per_site") else None,
        max_moves_per_power_domain=(
            int(m.max_moves_per_power_domain) if m.HasField("max_moves_per_power_domain") else None
        ),
        price_moves=bool(m.price_moves) if m.HasField("price_moves") else base.price_moves,
    )


def problem_and_errors_from_request(msg: pb.PlaceRequest) -> tuple[d.Problem, list[FieldError]]:
    """The domain instance and the conversion problems, without raising.

    Where a value has no domain equivalent (an unknown enum number, a ``Spread`` without a
    level) the problem is listed and the field holds a placeholder (the enum's first member),
    so that a caller can still run ``validate`` and report everything at once. The instance
    must not be solved when the list is not empty.
    """
    r = _Reader()
    problem = d.Problem(
        fleet=_fleet(r, msg.fleet),
        workloads=tuple(_workload(r, w, f"workloads[{i}]") for i, w in enumerate(msg.workloads)),
        options=_options(r, msg.options),
    )
    return problem, r.errors


def problem_from_request(msg: pb.PlaceRequest) -> d.Problem:
    """The domain instance of a request, defaults applied (see the module docstring).

    Raises ``InputError`` (every problem at once) only where a value has no domain
    equivalent: an unknown enum number or a ``Spread`` without a level. Everything else is
    left to ``placement.core.validate.validate``.
    """
    problem, errors = problem_and_errors_from_request(msg)
    if errors:
        raise InputError(errors)
    return problem


# ------------------------------------------------------------------- domain -> request


def _power_level_pb(x: d.PowerLevel) -> pb.PowerLevel:
    return pb.PowerLevel(power_cap_w=x.power_cap_w, relative_throughput_pct=x.relative_throughput_pct)


def _gpu_type_pb(x: d.GpuType) -> pb.GpuType:
    return pb.GpuType(
        name=x.name,
        memory_gib=x.memory_gib,
        max_power_w=x.max_power_w,
        min_power_cap_w=x.min_power_cap_w,
        idle_power_w=x.idle_power_w,
        power_levels=[_power_level_pb(p) for p in x.power_levels],
        shareable=x.shareable,
    )


def _site_pb(x: d.Site) -> pb.Site:
    return pb.Site(
        name=x.name,
        kind=enum_to_proto(x.kind),
        region=x.region,
        capacity_kw=x.capacity_kw,
        pue=x.pue,
        redundancy=enum_to_proto(x.redundancy),
        modules=x.modules,
        battery_minutes=x.battery_minutes,
        has_generator=x.has_generator,
        energy_price_per_kwh=x.energy_price_per_kwh,
        carbon_g_per_kwh=x.carbon_g_per_kwh,
    )


def _power_domain_pb(x: d.PowerDomain) -> pb.PowerDomain:
    return pb.PowerDomain(
        name=x.name,
        site=x.site,
        capacity_kw=x.capacity_kw,
        redundancy=enum_to_proto(x.redundancy),
        modules=x.modules,
    )


def _node_pb(x: d.Node) -> pb.Node:
    return pb.Node(
        name=x.name,
        site=x.site,
        power_domain=x.power_domain,
        gpu_type=x.gpu_type,
        gpu_count=x.gpu_count,
        host_power_w=x.host_power_w,
        state=enum_to_proto(x.state),
        cpu_milli=x.cpu_milli,
        host_memory_mib=x.host_memory_mib,
    )


def _fleet_pb(x: d.Fleet) -> pb.Fleet:
    return pb.Fleet(
        gpu_types=[_gpu_type_pb(g) for g in x.gpu_types],
        sites=[_site_pb(s) for s in x.sites],
        power_domains=[_power_domain_pb(p) for p in x.power_domains],
        nodes=[_node_pb(n) for n in x.nodes],
        regions=list(x.regions),
        links=[pb.Link(a=k.a, b=k.b, latency_ms=k.latency_ms) for k in x.links],
    )


def _workload_pb(x: d.Workload) -> pb.Workload:
    m = pb.Workload(
        name=x.name,
        gpus=x.gpus,
        gpu_milli=x.gpu_milli,
        memory_gib=x.memory_gib,
        allowed_gpu_types=list(x.allowed_gpu_types),
        min_replicas=x.min_replicas,
        max_replicas=x.max_replicas,
        survive_site_loss_pct=x.survive_site_loss_pct,
        backup_minutes=x.backup_minutes,
        user_region=x.user_region,
        max_latency_ms=x.max_latency_ms,
        priority=x.priority,
        min_power_cap_pct=x.min_power_cap_pct,
        cpu_milli=x.cpu_milli,
        host_memory_mib=x.host_memory_mib,
        current=[
            pb.CurrentReplica(node=c.node, gpu_indices=list(c.gpu_indices), power_cap_w=c.power_cap_w)
            for c in x.current
        ],
        pinned=x.pinned,
        max_per_node=x.max_per_node,
        max_per_power_domain=x.max_per_power_domain,
    )
    if x.move_cost != 1:  # absent means 1
        m.move_cost = x.move_cost
    if x.max_unavailable_count is not None:
        m.max_unavailable_count = x.max_unavailable_count
    elif x.max_unavailable_pct is not None:
        m.max_unavailable_pct = x.max_unavailable_pct
    if x.spread is not None:
        m.spread.CopyFrom(pb.Spread(level=enum_to_proto(x.spread.level), min_distinct=x.spread.min_distinct))
    return m


def _options_pb(x: d.SolveOptions) -> pb.SolveOptions:
    return pb.SolveOptions(
        backend=enum_to_proto(x.backend),
        time_limit_s=x.time_limit_s,
        seed=x.seed,
        workers=x.workers,
        energy_metric=enum_to_proto(x.energy_metric),
        optimise_energy=x.optimise_energy,
        optimise_moves=x.optimise_moves,
        optimise_fragmentation=x.optimise_fragmentation,
        deterministic=x.deterministic,
        max_moves=x.max_moves,
        max_moves_per_site=x.max_moves_per_site,
        max_moves_per_power_domain=x.max_moves_per_power_domain,
        price_moves=x.price_moves,
    )


def request_from_problem(problem: d.Problem) -> pb.PlaceRequest:
    """The request message of a domain instance, every field set explicitly."""
    return pb.PlaceRequest(
        fleet=_fleet_pb(problem.fleet),
        workloads=[_workload_pb(w) for w in problem.workloads],
        options=_options_pb(problem.options),
    )


# ------------------------------------------------------------------------------ plan


def reason_to_proto(reason: d.Reason) -> pb.Reason:
    return pb.Reason(
        rule=reason.rule,
        message=reason.message,
        candidates_excluded=reason.candidates_excluded,
        requested=reason.requested,
        available=reason.available,
        unit=reason.unit,
        where=reason.where,
    )


def reason_from_proto(m: pb.Reason) -> d.Reason:
    return d.Reason(
        rule=m.rule,
        message=m.message,
        candidates_excluded=int(m.candidates_excluded),
        requested=m.requested,
        available=m.available,
        unit=m.unit,
        where=m.where,
    )


def violation_to_proto(violation: ViolationLike) -> pb.Violation:
    """A verifier violation (anything with ``rule``, ``subject`` and ``message``) as a message."""
    return pb.Violation(rule=violation.rule, subject=violation.subject, message=violation.message)


def progress_to_proto(progress: DomainProgress) -> pb.Progress:
    m = pb.Progress(
        tier=progress.tier,
        objective=progress.objective,
        elapsed_s=progress.elapsed_s,
        source=progress.source,
    )
    if progress.bound is not None:
        m.bound = progress.bound
    return m


def _power_budget_pb(x: d.PowerBudget) -> pb.PowerBudget:
    return pb.PowerBudget(
        kind=x.kind,
        name=x.name,
        site=x.site,
        redundancy=enum_to_proto(x.redundancy),
        feeds=x.feeds,
        capacity_kw=x.capacity_kw,
        usable_kw=x.usable_kw,
        it_kw=x.it_kw,
        facility_kw=x.facility_kw,
        headroom_kw=x.headroom_kw,
        utilisation_pct=x.utilisation_pct,
        feed_rating_kw=x.feed_rating_kw,
        feed_load_kw=x.feed_load_kw,
        failure_feed_load_kw=x.failure_feed_load_kw,
        survives_failure=x.survives_failure,
    )


def _budgets_pb(x: d.PowerBudgets) -> pb.PowerBudgets:
    return pb.PowerBudgets(
        gpus=[
            pb.GpuBudget(
                node=g.node,
                index=g.index,
                power_cap_w=g.power_cap_w,
                used_milli=g.used_milli,
                workloads=list(g.workloads),
            )
            for g in x.gpus
        ],
        nodes=[
            pb.NodeBudget(
                node=n.node,
                site=n.site,
                power_domain=n.power_domain,
                on=n.on,
                host_w=n.host_w,
                gpu_w=n.gpu_w,
                it_w=n.it_w,
            )
            for n in x.nodes
        ],
        power_domains=[_power_budget_pb(p) for p in x.power_domains],
        sites=[_power_budget_pb(s) for s in x.sites],
        energy_cost_per_h=x.energy_cost_per_h,
        carbon_kg_per_h=x.carbon_kg_per_h,
    )


def _info_pb(x: d.SolveInfo) -> pb.SolveInfo:
    m = pb.SolveInfo(
        status=enum_to_proto(x.status),
        stop_reason=enum_to_proto(x.stop_reason),
        backend=x.backend,
        solver_version=x.solver_version,
        seed=x.seed,
        wall_s=x.wall_s,
        code_revision=x.code_revision,
        started_at=x.started_at,
        deterministic=x.deterministic,
        method=x.method,
        solvers=list(x.solvers),
    )
    if x.bound is not None:
        m.bound = x.bound
    if x.gap is not None:
        m.gap = x.gap
    return m


def plan_to_proto(plan: d.Plan) -> pb.Plan:
    return pb.Plan(
        placements=[
            pb.ReplicaPlacement(
                workload=p.workload,
                replica=p.replica,
                site=p.site,
                power_domain=p.power_domain,
                node=p.node,
                gpu_indices=list(p.gpu_indices),
                gpu_milli=p.gpu_milli,
                power_cap_w=p.power_cap_w,
            )
            for p in plan.placements
        ],
        budgets=_budgets_pb(plan.budgets),
        unplaced=[
            pb.UnplacedWorkload(workload=u.workload, reasons=[reason_to_proto(r) for r in u.reasons])
            for u in plan.unplaced
        ],
        objective=pb.ObjectiveTiers(
            placed_work=plan.objective.placed_work,
            energy=plan.objective.energy,
            moves=plan.objective.moves,
            fragmentation=plan.objective.fragmentation,
            move_price=plan.objective.move_price,
        ),
        info=_info_pb(plan.info),
        displaced=[_displaced_pb(x) for x in plan.displaced],
        move_curve=[
            pb.MovePoint(moves=x.moves, earns_work=x.earns_work, earns_energy=x.earns_energy)
            for x in plan.move_curve
        ],
        migration=_migration_pb(plan.migration) if plan.migration is not None else None,
    )


def _peak_pb(x: d.PowerPeak) -> pb.PowerPeak:
    return pb.PowerPeak(
        kind=x.kind,
        name=x.name,
        site=x.site,
        usable_w=x.usable_w,
        start_w=x.start_w,
        peak_w=x.peak_w,
        peak_step=x.peak_step,
        end_w=x.end_w,
    )


def _migration_pb(x: d.Migration) -> pb.Migration:
    return pb.Migration(
        steps=[
            pb.MigrationStep(
                kind=enum_to_proto(s.kind),
                workload=s.workload,
                node=s.node,
                gpu_indices=list(s.gpu_indices),
                power_cap_w=s.power_cap_w,
                gpu_milli=s.gpu_milli,
            )
            for s in x.steps
        ],
        blocked=[
            pb.BlockedMove(
                workload=b.workload,
                node=b.node,
                gpu_indices=list(b.gpu_indices),
                rule=b.rule,
                message=b.message,
                requested=b.requested,
                available=b.available,
                unit=b.unit,
                where=b.where,
            )
            for b in x.blocked
        ],
        downtime=[
            pb.Downtime(
                workload=t.workload,
                node=t.node,
                gpu_indices=list(t.gpu_indices),
                stop_step=t.stop_step,
                steps_down=t.steps_down,
                within_budget=t.within_budget,
            )
            for t in x.downtime
        ],
        site_peaks=[_peak_pb(p) for p in x.site_peaks],
        domain_peaks=[_peak_pb(p) for p in x.domain_peaks],
        safe=x.safe,
    )


def _displaced_pb(x: d.Displaced) -> pb.Displaced:
    return pb.Displaced(
        workload=x.workload,
        node=x.node,
        gpu_indices=list(x.gpu_indices),
        forced=x.forced,
        rule=x.rule,
        message=x.message,
        evictor=x.evictor,
        to_node=x.to_node,
        earns_work=x.earns_work,
        earns_energy=x.earns_energy,
    )


def _power_budget(r: _Reader, m: pb.PowerBudget, path: str) -> d.PowerBudget:
    return d.PowerBudget(
        kind=m.kind,
        name=m.name,
        site=m.site,
        redundancy=r.enum(d.Redundancy, m.redundancy, f"{path}.redundancy", d.Redundancy.N),
        feeds=int(m.feeds),
        capacity_kw=float(m.capacity_kw),
        usable_kw=float(m.usable_kw),
        it_kw=float(m.it_kw),
        facility_kw=float(m.facility_kw),
        headroom_kw=float(m.headroom_kw),
        utilisation_pct=float(m.utilisation_pct),
        feed_rating_kw=float(m.feed_rating_kw),
        feed_load_kw=float(m.feed_load_kw),
        failure_feed_load_kw=float(m.failure_feed_load_kw),
        survives_failure=bool(m.survives_failure),
    )


def plan_from_proto(msg: pb.Plan) -> d.Plan:
    """The domain plan of a message (e.g. a plan file to verify). ``NodeBudget.it_w`` is derived
    in the domain and its message value is ignored. Raises ``InputError`` on unknown enum numbers."""
    r = _Reader()
    b = msg.budgets
    budgets = d.PowerBudgets(
        gpus=tuple(
            d.GpuBudget(
                node=g.node,
                index=int(g.index),
                power_cap_w=int(g.power_cap_w),
                used_milli=int(g.used_milli),
                workloads=tuple(g.workloads),
            )
            for g in b.gpus
        ),
        nodes=tuple(
            d.NodeBudget(
                node=n.node,
                site=n.site,
                power_domain=n.power_domain,
                on=bool(n.on),
                host_w=int(n.host_w),
                gpu_w=int(n.gpu_w),
            )
            for n in b.nodes
        ),
        power_domains=tuple(
            _power_budget(r, p, f"budgets.powerDomains[{i}]") for i, p in enumerate(b.power_domains)
        ),
        sites=tuple(_power_budget(r, s, f"budgets.sites[{i}]") for i, s in enumerate(b.sites)),
        energy_cost_per_h=float(b.energy_cost_per_h),
        carbon_kg_per_h=float(b.carbon_kg_per_h),
    )
    i = msg.info
    info = d.SolveInfo(
        status=r.enum(d.SolveStatus, i.status, "info.status", d.SolveStatus.FEASIBLE),
        stop_reason=r.enum(d.StopReason, i.stop_reason, "info.stopReason", d.StopReason.NONE),
        bound=float(i.bound) if i.HasField("bound") else None,
        gap=float(i.gap) if i.HasField("gap") else None,
        backend=i.backend,
        solver_version=i.solver_version,
        seed=int(i.seed),
        wall_s=float(i.wall_s),
        code_revision=i.code_revision,
        started_at=i.started_at,
        deterministic=bool(i.deterministic),
        method=i.method,
        solvers=tuple(i.solvers),
    )
    o = msg.objective
    plan = d.Plan(
        placements=tuple(
            d.ReplicaPlacement(
                workload=p.workload,
                replica=int(p.replica),
                site=p.site,
                power_domain=p.power_domain,
                node=p.node,
                gpu_indices=tuple(int(g) for g in p.gpu_indices),
                gpu_milli=int(p.gpu_milli),
                power_cap_w=int(p.power_cap_w),
            )
            for p in msg.placements
        ),
        budgets=budgets,
        unplaced=tuple(
            d.UnplacedWorkload(workload=u.workload, reasons=tuple(reason_from_proto(x) for x in u.reasons))
            for u in msg.unplaced
        ),
        objective=d.ObjectiveTiers(
            placed_work=int(o.placed_work),
            energy=int(o.energy),
            moves=int(o.moves),
            fragmentation=int(o.fragmentation),
            move_price=int(o.move_price),
        ),
        info=info,
        displaced=tuple(
            d.Displaced(
                workload=x.workload,
                node=x.node,
                gpu_indices=tuple(int(g) for g in x.gpu_indices),
                forced=bool(x.forced),
                rule=x.rule,
                message=x.message,
                evictor=x.evictor,
                to_node=x.to_node,
                earns_work=int(x.earns_work),
                earns_energy=int(x.earns_energy),
            )
            for x in msg.displaced
        ),
        move_curve=tuple(
            d.MovePoint(moves=int(x.moves), earns_work=int(x.earns_work), earns_energy=int(x.earns_energy))
            for x in msg.move_curve
        ),
        migration=_migration(r, msg.migration) if msg.HasField("migration") else None,
    )
    if r.errors:
        raise InputError(r.errors)
    return plan


def _peak(m: pb.PowerPeak) -> d.PowerPeak:
    return d.PowerPeak(
        kind=m.kind,
        name=m.name,
        site=m.site,
        usable_w=int(m.usable_w),
        start_w=int(m.start_w),
        peak_w=int(m.peak_w),
        peak_step=int(m.peak_step),
        end_w=int(m.end_w),
    )


def _migration(r: _Reader, m: pb.Migration) -> d.Migration:
    return d.Migration(
        steps=tuple(
            d.MigrationStep(
                kind=r.enum(d.StepKind, s.kind, f"migration.steps[{i}].kind", None),
                workload=s.workload,
                node=s.node,
                gpu_indices=tuple(int(g) for g in s.gpu_indices),
                power_cap_w=int(s.power_cap_w),
                gpu_milli=int(s.gpu_milli),
            )
            for i, s in enumerate(m.steps)
        ),
        blocked=tuple(
            d.BlockedMove(
                workload=b.workload,
                node=b.node,
                gpu_indices=tuple(int(g) for g in b.gpu_indices),
                rule=b.rule,
                message=b.message,
                requested=float(b.requested),
                available=float(b.available),
                unit=b.unit,
                where=b.where,
            )
            for b in m.blocked
        ),
        downtime=tuple(
            d.Downtime(
                workload=t.workload,
                node=t.node,
                gpu_indices=tuple(int(g) for g in t.gpu_indices),
                stop_step=int(t.stop_step),
                steps_down=int(t.steps_down),
                within_budget=bool(t.within_budget),
            )
            for t in m.downtime
        ),
        site_peaks=tuple(_peak(p) for p in m.site_peaks),
        domain_peaks=tuple(_peak(p) for p in m.domain_peaks),
        safe=bool(m.safe),
    )


# ----------------------------------------------------------------- fleet changes


def changes_and_errors_from_proto(
    msg: pb.FleetChanges, prefix: str = "changes."
) -> tuple[FleetChanges, list[FieldError]]:
    """The domain changes of a ``FleetChanges`` message and the conversion problems (paths under
    ``prefix``), without raising; ``placement.changes`` checks the rest against the input."""
    r = _Reader()
    changes = FleetChanges(
        drain_nodes=tuple(msg.drain_nodes),
        down_nodes=tuple(msg.down_nodes),
        ready_nodes=tuple(msg.ready_nodes),
        add_nodes=tuple(_node(r, x, f"{prefix}addNodes[{i}]") for i, x in enumerate(msg.add_nodes)),
        remove_nodes=tuple(msg.remove_nodes),
        add_workloads=tuple(
            _workload(r, x, f"{prefix}addWorkloads[{i}]") for i, x in enumerate(msg.add_workloads)
        ),
        remove_workloads=tuple(msg.remove_workloads),
        rescale_workloads=tuple(
            Rescale(
                workload=x.workload,
                min_replicas=int(x.min_replicas) if x.HasField("min_replicas") else None,
                max_replicas=int(x.max_replicas) if x.HasField("max_replicas") else None,
            )
            for x in msg.rescale_workloads
        ),
    )
    return changes, r.errors


def changes_to_proto(changes: FleetChanges) -> pb.FleetChanges:
    msg = pb.FleetChanges(
        drain_nodes=list(changes.drain_nodes),
        down_nodes=list(changes.down_nodes),
        ready_nodes=list(changes.ready_nodes),
        add_nodes=[_node_pb(n) for n in changes.add_nodes],
        remove_nodes=list(changes.remove_nodes),
        add_workloads=[_workload_pb(w) for w in changes.add_workloads],
        remove_workloads=list(changes.remove_workloads),
    )
    for r in changes.rescale_workloads:
        m = msg.rescale_workloads.add(workload=r.workload)
        if r.min_replicas is not None:
            m.min_replicas = r.min_replicas
        if r.max_replicas is not None:
            m.max_replicas = r.max_replicas
    return msg


# ----------------------------------------------------------------- the plan store


def record_to_proto(record: PlanRecordLike) -> pb.PlanRecord:
    """The ``PlanRecord`` message of a stored plan's record."""
    created = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC)
    m = pb.PlanRecord(
        id=record.id,
        created_at=created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        requested_by=record.requested_by,
        kind=record.kind,
        current=record.current,
        input_digest=record.input_digest,
        status=enum_to_proto(d.SolveStatus[record.status]),
        stop_reason=enum_to_proto(d.StopReason[record.stop_reason]),
        objective=pb.ObjectiveTiers(
            placed_work=record.placed_work,
            energy=record.energy,
            moves=record.moves,
            fragmentation=record.fragmentation,
            move_price=record.move_price,
        ),
        replicas=record.replicas,
        unplaced_workloads=record.unplaced_workloads,
        wall_s=record.wall_s,
        code_revision=record.code_revision,
        changes=record.changes,
    )
    if record.parent_id is not None:
        m.parent_id = record.parent_id
    if record.bound is not None:
        m.bound = record.bound
    if record.gap is not None:
        m.gap = record.gap
    return m


def rebalance_to_proto(
    plan: d.Plan,
    diff: PlanDiff,
    failures: tuple[GateFailure, ...] | list[GateFailure],
    previous_id: int | None,
    record: PlanRecordLike | None,
) -> pb.RebalanceResponse:
    """The answer of a rebalance: the new plan (its migration in it), the diff's counts, the gate."""
    m = pb.RebalanceResponse(
        plan=plan_to_proto(plan),
        gate_failures=[pb.GateFailure(rule=f.rule, message=f.message) for f in failures],
        changed=diff.changed,
        moves=diff.moves,
        unforced_moves=diff.unforced_moves,
        added=len(diff.added),
        moved=len(diff.moved),
        evicted=len(diff.evicted),
        retuned=len(diff.retuned),
        dropped=list(diff.dropped),
    )
    if previous_id is not None:
        m.previous_id = previous_id
    if record is not None:
        m.record.CopyFrom(record_to_proto(record))
    return m
