"""Plain-text presentation of plan diffs, rebalances and the plan store's history.

The diff reads like ``terraform plan``: ``+`` a replica placed, ``-`` a replica evicted (and
why), ``~`` a replica moved (from -> to, with its power cap, and why) or retuned on its node;
then the change of IT power per site and power domain, then the migration steps. The reasons
are ``Plan.displaced``'s (rule, forced, evictor); the migration's summary is the plain report's
(``fleetplace.report.migration_lines``). Presentation only: the numbers come from
``placement.diff.PlanDiff``, the plan's ``Migration`` and the stored records.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetplace.report import migration_lines, table
from fleetplace.store import PlanRecord
from placement.core.domain import Migration, MigrationStep, StepKind
from placement.diff import PlanDiff, ReplicaAt, Why
from placement.gate import GateFailure

DEFAULT_LIMIT = 50  # lines per kind of change before "... and N more"


def _gpus(at: ReplicaAt) -> str:
    gpus = ",".join(str(i) for i in at.gpu_indices)
    share = "" if at.gpu_milli == 1000 else f" ({at.gpu_milli}/1000)"
    return f"GPU{'s' if len(at.gpu_indices) != 1 else ''} {gpus}{share}"


def _where(at: ReplicaAt) -> str:
    return f"{at.site}/{at.power_domain}/{at.node} {_gpus(at)} @ {at.power_cap_w} W"


def _why(workload: str, why: Why) -> str:
    """``[rule] message`` with the message's own "workload on node GPUs [..]: " lead cut (the line
    names them already), and who preempted it or that the input forced it."""
    text = why.message
    if text.startswith(f"{workload} on ") and ": " in text:
        text = text.split(": ", 1)[1]
    tags = [why.rule] + (["forced"] if why.forced else [])
    return f"[{', '.join(tags)}] {text}"


def _limited(lines: list[str], limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"    ... and {len(lines) - limit:,} more"]


def summary_line(diff: PlanDiff) -> str:
    return (
        f"Plan: {len(diff.added):,} to place, {len(diff.moved):,} to move, {len(diff.evicted):,} to evict, "
        f"{len(diff.retuned):,} to retune ({diff.moves:,} move{'s' if diff.moves != 1 else ''}, "
        f"{diff.unforced_moves:,} not forced by the input); "
        f"placed work {diff.placed_work_before:,} -> {diff.placed_work_after:,}."
    )


def render_diff(diff: PlanDiff, limit: int = DEFAULT_LIMIT) -> list[str]:
    """The diff's lines: the summary, each change, then the power per site and power domain."""
    out = [summary_line(diff)]
    if not diff.changed:
        out.append("No changes: every replica stays where it runs, at its power cap.")
    names = [c.workload for c in diff.added] + [c.workload for c in diff.evicted]
    names += [c.workload for c in diff.moved] + [c.workload for c in diff.retuned]
    name_w = max((len(n) for n in names), default=0)
    if diff.added:
        out.append("")
        out.extend(_limited([f"  + {a.workload:<{name_w}}  {_where(a.at)}" for a in diff.added], limit))
    if diff.moved:
        out.append("")
        out.extend(
            _limited(
                [
                    f"  ~ {m.workload:<{name_w}}  {_where(m.source)} -> {_where(m.target)}: "
                    + _why(m.workload, m.why)
                    for m in diff.moved
                ],
                limit,
            )
        )
    if diff.evicted:
        out.append("")
        out.extend(
            _limited(
                [
                    f"  - {e.workload:<{name_w}}  {_where(e.at)}: {_why(e.workload, e.why)}"
                    for e in diff.evicted
                ],
                limit,
            )
        )
    if diff.retuned:
        out.append("")
        lines = []
        for r in diff.retuned:
            what = []
            if r.before.gpu_indices != r.after.gpu_indices:
                what.append(f"{_gpus(r.before)} -> {_gpus(r.after)}")
            if r.before.power_cap_w != r.after.power_cap_w:
                what.append(f"cap {r.before.power_cap_w} -> {r.after.power_cap_w} W")
            lines.append(
                f"  ~ {r.workload:<{name_w}}  on {r.after.site}/{r.after.power_domain}/{r.after.node}: "
                + ", ".join(what)
            )
        out.extend(_limited(lines, limit))
    if diff.dropped:
        out.append("")
        out.append(f"Running workloads not placed any more: {', '.join(diff.dropped)}")
    out.append("")
    out.extend(render_power(diff, limit))
    return out


def render_power(diff: PlanDiff, limit: int = DEFAULT_LIMIT) -> list[str]:
    if not diff.power:
        return ["Power: no site or power domain changes its draw."]
    rows = [
        [
            "site" if c.kind == "site" else "power domain",
            c.name if c.kind == "site" else f"{c.site}/{c.name}",
            c.before_w / 1000,
            c.after_w / 1000,
            f"{c.delta_w / 1000:+,.1f}",
            c.usable_w / 1000,
            f"{c.after_pct:.1f}%",
        ]
        for c in diff.power
    ]
    sites = [r for r in rows if r[0] == "site"]
    domains = sorted(
        (r for r in rows if r[0] != "site"), key=lambda r: -abs(float(str(r[4]).replace(",", "")))
    )
    shown = sites + domains[:limit]
    lines = ["Power change (IT kW)"]
    lines.append(table(["", "name", "before", "after", "change", "usable", "after/usable"], shown, "llrrrrr"))
    if len(domains) > limit:
        lines.append(f"    ... and {len(domains) - limit:,} more power domains")
    return lines


def step_line(number: int, s: MigrationStep) -> str:
    gpus = ",".join(str(i) for i in s.gpu_indices)
    share = "" if s.gpu_milli == 1000 else f" ({s.gpu_milli}/1000)"
    where = f"{s.workload} on {s.node} GPU{'s' if len(s.gpu_indices) != 1 else ''} {gpus}{share}"
    if s.kind is StepKind.START:
        return f"  {number:>4}. start {where} at {s.power_cap_w} W"
    if s.kind is StepKind.WAIT_READY:
        return f"  {number:>4}. wait until {where} is ready"
    if s.kind is StepKind.SET_CAP:
        return f"  {number:>4}. set the cap of {where} to {s.power_cap_w} W"
    return f"  {number:>4}. stop {where}"


def render_migration(migration: Migration | None, limit: int = DEFAULT_LIMIT) -> list[str]:
    """The plan's migration: the report's summary (counts, safe or not, blocked moves, replicas
    down, each site's peak watts), then every step in order, up to ``limit``."""
    if migration is None:
        return ["Migration: none (no plan to apply, or nothing runs today: start every replica)."]
    if not migration.steps:
        return ["Migration: no step needed; every replica stays where it runs, at its cap."]
    lines = migration_lines(migration)
    lines.append(f"Migration steps ({len(migration.steps):,}, in order)")
    lines.extend(step_line(i, s) for i, s in enumerate(migration.steps[:limit], start=1))
    if len(migration.steps) > limit:
        lines.append(f"    ... and {len(migration.steps) - limit:,} more (every step is in the JSON plan)")
    return lines


def render_failures(failures: Sequence[GateFailure]) -> list[str]:
    return [f"  {f}" for f in failures]


def record_line(r: PlanRecord) -> str:
    parent = f", from #{r.parent_id}" if r.parent_id is not None else ""
    changes = f", changes: {r.changes}" if r.changes else ""
    return (
        f"plan #{r.id}{' (current)' if r.current else ''}: {r.kind} by {r.requested_by} at "
        f"{r.created_at.strftime('%Y-%m-%d %H:%M:%S UTC')}{parent}{changes}"
    )


def record_lines(r: PlanRecord) -> list[str]:
    gap = f"{r.gap * 100:.2f}%" if r.gap is not None else "n/a"
    bound = f"{r.bound:,.0f}" if r.bound is not None else "n/a"
    return [
        record_line(r),
        f"  status {r.status}, stop reason {r.stop_reason}, gap {gap}, bound {bound}, {r.wall_s:.1f} s, "
        f"code revision {r.code_revision or 'unknown'}",
        f"  placed work {r.placed_work:,}, energy {r.energy:,}, moves {r.moves:,}, fragmentation "
        f"{r.fragmentation:,}; {r.replicas:,} replicas, {r.unplaced_workloads:,} workloads not placed",
        f"  input digest sha256:{r.input_digest}",
    ]


def render_history(records: Sequence[PlanRecord]) -> str:
    if not records:
        return "The store holds no plans yet."
    rows = [
        [
            f"{r.id}{'*' if r.current else ''}",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.requested_by,
            r.kind,
            r.status,
            f"{r.gap * 100:.2f}%" if r.gap is not None else "",
            r.placed_work,
            r.moves,
            r.replicas,
            r.unplaced_workloads,
            r.input_digest[:12],
            r.changes,
        ]
        for r in records
    ]
    head = ["id", "created (UTC)", "by", "kind", "status", "gap", "placed work", "moves", "replicas",
            "unplaced", "input", "changes"]  # fmt: skip
    return table(head, rows, "llllllrrrrll") + "\n* the current plan"
