"""Plain-text presentation of a plan: what a person reads after ``fleetplace plan``.

Presentation only; the numbers all come from the (verified) plan. Every number carries its
unit. Money has no currency in the schema: energy prices are "currency per kWh" in whatever
currency the sites' prices are given, so the cost reads "per hour at the sites' energy
prices" (a currency code in the fleet would be a schema change for a label).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from placement.core.domain import EnergyMetric, Migration, Plan, PowerBudget, Problem, Reason, StepKind

# tier 1 counts priority x GPU thousandths x throughput percent: one GPU at full throughput
# and priority 1 is 1000 x 100
_WORK_PER_GPU = 100_000


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A fixed-width table; ``align`` holds one of 'l'/'r' per column (default: text left, numbers right)."""
    body = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    if not align:
        sample = body[0] if body else ["" for _ in headers]
        align = "".join("r" if _is_number(v) else "l" for v in sample)

    def fmt(row: Sequence[str]) -> str:
        cells = [v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(row, widths, align, strict=True)]
        return "  ".join(cells).rstrip()

    lines = [fmt(list(headers)), fmt(["-" * w for w in widths])]
    lines.extend(fmt(r) for r in body)
    return "\n".join(lines)


def _cell(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _is_number(s: str) -> bool:
    return bool(s) and s.replace(",", "").replace(".", "", 1).replace("-", "", 1).replace("%", "").isdigit()


def _shorten(items: list[str], width: int = 70) -> str:
    """Join items, most important first, ending in "+N more" once past ``width`` characters."""
    out: list[str] = []
    used = 0
    for i, item in enumerate(items):
        rest = len(items) - i
        if out and used + len(item) + 2 > width - len(f", +{rest} more"):
            out.append(f"+{rest} more")
            break
        out.append(item)
        used += len(item) + 2
    return ", ".join(out)


def status_line(plan: Plan) -> str:
    info = plan.info
    parts = [f"status {info.status.value}"]
    if info.stop_reason.value != "NONE":
        parts.append(f"stopped: {info.stop_reason.value.lower().replace('_', ' ')}")
    if info.gap is not None:
        parts.append(f"gap {info.gap * 100:.2f}%")
    if info.bound is not None:
        of = "placed work less the moves' price" if plan.objective.move_price else "placed work"
        parts.append(f"bound {info.bound:,.0f} {of}")
    if info.method:  # what made the plan, and the solvers that ran for it
        used = ", ".join(info.solvers)
        if used and info.solver_version:
            used = f"{used}: {info.solver_version}"
        parts.append(f"by {info.method}" + (f" ({used})" if used else ""))
    if info.backend:  # the per-node model's, when it ran
        parts.append(f"backend {info.backend}")
    parts.append(f"seed {info.seed}")
    parts.append(f"{info.wall_s:.1f} s")
    return ", ".join(parts)


def budget_rows(budgets: Iterable[PowerBudget]) -> list[list[object]]:
    return [
        [
            b.name if b.kind == "site" else f"{b.site}/{b.name}",
            b.redundancy.value,
            b.usable_kw,
            b.it_kw,
            b.facility_kw,
            b.headroom_kw,
            f"{b.utilisation_pct:.1f}%",
            b.failure_feed_load_kw,
            b.feed_rating_kw,
            b.survives_failure,
        ]
        for b in budgets
    ]


BUDGET_HEADERS = (
    "name",
    "redund.",
    "usable kW",
    "IT kW",
    "facility kW",
    "headroom kW",
    "util.",
    "after-failure feed kW",
    "feed rating kW",
    "survives",
)


def objective_lines(problem: Problem, plan: Plan) -> list[str]:
    """The four tiers with their units, highest first."""
    o = plan.objective
    if problem.options.energy_metric is EnergyMetric.CARBON:
        energy = f"{o.energy / 1e6:,.1f} g CO2 per hour (tier value {o.energy:,} ug CO2/h)"
    else:
        energy = (
            f"{o.energy / 1e9:,.2f} per hour at the sites' energy prices "
            f"(tier value {o.energy:,} billionths of the currency per hour)"
        )
    rows = [
        ("placed work", f"{o.placed_work / _WORK_PER_GPU:,.2f} priority-weighted GPUs at full throughput "
                        f"(tier value {o.placed_work:,} = priority x GPU thousandths x throughput %)"),
        ("energy", energy),
        ("moves", f"{o.moves:,} replica{'' if o.moves == 1 else 's'} moved off their current node"),
        ("fragmentation", f"{o.fragmentation:,} powered nodes + shared GPUs in use"),
    ]  # fmt: skip
    if o.move_price:
        rows.append(
            ("move price", f"{o.move_price / _WORK_PER_GPU:,.2f} GPUs of placed work the moves cost "
                           f"(tier 1 compares placed work less this: {o.net_work:,})")
        )  # fmt: skip
    return [f"  {name:<14} {text}" for name, text in rows]


def detail_lines(problem: Problem, plan: Plan) -> list[str]:
    """``--detail``: every node's power budget and every replica's GPUs and power cap."""
    out = ["Node budgets (W; an empty node is off and draws 0)"]
    gpus_of: dict[str, int] = {n.name: n.gpu_count for n in problem.fleet.nodes}
    used: Counter[str] = Counter()
    for g in plan.budgets.gpus:
        if g.used_milli:
            used[g.node] += 1
    rows = [
        [n.node, f"{n.site}/{n.power_domain}", "on" if n.on else "off", n.host_w, n.gpu_w, n.it_w,
         f"{used[n.node]}/{gpus_of.get(n.node, 0)}"]
        for n in sorted(plan.budgets.nodes, key=lambda n: (n.site, n.power_domain, n.node))
    ]  # fmt: skip
    out.append(
        table(["node", "site/power domain", "state", "host W", "GPU W", "IT W", "GPUs used"], rows, "lllrrrr")
    )
    out.append("")
    out.append("Replicas (power cap per GPU, W)")
    rows = [
        [f"{p.workload}#{p.replica}", p.node, ",".join(str(i) for i in p.gpu_indices),
         "whole" if p.gpu_milli == 1000 else f"{p.gpu_milli}/1000", p.power_cap_w]
        for p in sorted(plan.placements, key=lambda p: (p.workload, p.replica))
    ]  # fmt: skip
    out.append(
        table(["replica", "node", "GPUs", "share", "power cap W"], rows, "lllrr") if rows else "  (none)"
    )
    return out


def render(problem: Problem, plan: Plan, max_domains: int = 40, detail: bool = False) -> str:
    """The human summary: placements per site, power budgets, unplaced work, status; with
    ``detail`` also every node's budget and every replica's power cap."""
    out: list[str] = []
    wl_total = len(problem.workloads)
    placed_wl = {p.workload for p in plan.placements}
    gpus_total = sum(n.gpu_count for n in problem.fleet.nodes)
    gpu_used = sum(len(p.gpu_indices) * p.gpu_milli for p in plan.placements) / 1000
    out.append(
        f"Placed {len(placed_wl)} of {wl_total} workloads, {len(plan.placements)} replicas, "
        f"{gpu_used:,.1f} of {gpus_total:,} GPUs."
    )
    out.append(status_line(plan))
    out.append("")

    # placements per site
    per_site: dict[str, Counter[str]] = defaultdict(Counter)
    gpus_site: Counter[str] = Counter()
    for p in plan.placements:
        per_site[p.site][p.workload] += 1
        gpus_site[p.site] += len(p.gpu_indices) * p.gpu_milli
    out.append("Placements per site")
    rows = []
    for site in sorted(per_site):
        wls = _shorten(
            [f"{w} x{c}" for w, c in sorted(per_site[site].items(), key=lambda kv: (-kv[1], kv[0]))]
        )
        rows.append([site, sum(per_site[site].values()), gpus_site[site] / 1000, wls])
    out.append(table(["site", "replicas", "GPUs", "workloads"], rows, "lrrl") if rows else "  (none)")
    out.append("")

    out.append("Power budgets: sites")
    out.append(table(BUDGET_HEADERS, budget_rows(plan.budgets.sites), "llrrrrrrrl"))
    out.append("")
    domains = sorted(plan.budgets.power_domains, key=lambda b: b.headroom_kw)
    title = "Power budgets: power domains"
    if len(domains) > max_domains:
        title += f" (the {max_domains} with least headroom of {len(domains)})"
        domains = domains[:max_domains]
    out.append(title)
    out.append(table(BUDGET_HEADERS, budget_rows(domains), "llrrrrrrrl"))
    out.append("")
    b = plan.budgets
    out.append(
        f"Energy: {b.energy_cost_per_h:,.2f} per hour at the sites' energy prices (facility kW x price "
        f"per kWh), {b.carbon_kg_per_h:,.1f} kg CO2 per hour."
    )
    out.append("Objective, highest tier first:")
    out.extend(objective_lines(problem, plan))
    out.append("")
    if plan.displaced:
        out.extend(move_lines(plan))
        out.append("")
    if detail:
        out.extend(detail_lines(problem, plan))
        out.append("")
    if plan.migration is not None:
        out.extend(migration_lines(plan.migration))
        out.append("")
    if plan.unplaced:
        runs = {w.name: len(w.current) for w in problem.workloads if w.current}
        out.append(f"Not placed ({len(plan.unplaced)})")
        for u in plan.unplaced:
            today = f" (runs today: {runs[u.workload]} replicas)" if runs.get(u.workload) else ""
            out.append(f"  {u.workload}{today}")
            for r in u.reasons:
                out.append(f"    - [{r.rule}] {r.message}")
    else:
        out.append("Every workload is placed.")
    return "\n".join(out)


def move_lines(plan: Plan, most: int = 10) -> list[str]:
    """The moves against the current placement: how many by reason, the ones that earn most, and the
    gain against moves at a few budgets."""
    moves = plan.displaced
    forced = [m for m in moves if m.forced]
    by_rule = Counter(m.rule for m in moves)
    out = [
        f"Moves: {len(moves)} current replica{'' if len(moves) == 1 else 's'} not kept on their node, "
        f"{len(forced)} forced by the input ("
        + ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])))
        + ")"
    ]
    free = sorted((m for m in moves if not m.forced), key=lambda m: -m.earns_work)
    if free:
        out.append(f"  the {min(most, len(free))} unforced moves that earn most (placed work in GPUs):")
        rows = [
            [m.workload, m.node, m.rule, m.evictor or m.to_node or "-", m.earns_work / _WORK_PER_GPU]
            for m in free[:most]
        ]
        out.append(table(["workload", "from node", "why", "evictor / to node", "earns"], rows, "llllr"))
    if plan.move_curve:
        points = ", ".join(f"{p.moves:,} moves {p.earns_work / _WORK_PER_GPU:,.1f}" for p in plan.move_curve)
        out.append(f"  gain against moves (placed work in GPUs, best moves first): {points}")
    return out


def migration_lines(m: Migration, shown: int = 8) -> list[str]:
    """A re-plan's migration in a few lines, however many steps: counts, safe or not, the first
    blocked moves and replicas down, and each site's peak watts against its usable watts (every
    step is in the JSON plan)."""
    kinds = Counter(s.kind for s in m.steps)
    out = [
        f"Migration from the current placement: {len(m.steps):,} steps ({kinds[StepKind.START]:,} starts, "
        f"{kinds[StepKind.STOP]:,} stops, {kinds[StepKind.SET_CAP]:,} caps set in place), "
        + ("safe: make-before-break, breaks within budgets" if m.safe else "NOT SAFE")
    ]
    if m.blocked:
        out.append(f"  {len(m.blocked):,} blocked moves (no safe order fits the headroom):")
        out.extend(f"    - {b.workload} to {b.node}: [{b.rule}] {b.message}" for b in m.blocked[:shown])
        if len(m.blocked) > shown:
            out.append(f"    ... {len(m.blocked) - shown:,} more")
    if m.downtime:
        beyond = sum(1 for t in m.downtime if not t.within_budget)
        out.append(
            f"  {len(m.downtime):,} replicas stopped before their replacement is ready "
            f"({beyond:,} beyond their workload's budget):"
        )
        worst = sorted(m.downtime, key=lambda t: (t.within_budget, -t.steps_down, t.stop_step))
        out.extend(
            f"    - {t.workload} on {t.node}: down {t.steps_down:,} steps from step {t.stop_step:,}"
            + ("" if t.within_budget else " (beyond budget)")
            for t in worst[:shown]
        )
        if len(m.downtime) > shown:
            out.append(f"    ... {len(m.downtime) - shown:,} more")
    if m.site_peaks:
        rows = [
            [p.name, p.start_w, p.peak_w, p.peak_step, p.end_w, p.usable_w, p.usable_w - p.peak_w]
            for p in m.site_peaks
        ]
        out.append("  Site watts during the migration")
        out.extend(
            "  " + line
            for line in table(
                ["site", "start W", "peak W", "at step", "end W", "usable W", "headroom at peak W"],
                rows,
                "lrrrrrr",
            ).splitlines()
        )
    return out


def reason_lines(reasons: Iterable[Reason], indent: str) -> list[str]:
    return [f"{indent}- [{r.rule}] {r.message}" for r in reasons]


def render_explanation(
    workload: str, reasons: Sequence[Reason], plan_path: str | None, replicas: int, site: str | None
) -> str:
    """``fleetplace explain``: the answer, then the reasons (the filter's first, then the plan's)."""
    where = f" in site {site}" if site else ""
    if plan_path is None:
        head = f"{workload}: what rules out its candidate nodes{where} on an empty fleet"
        none = "  no rule rules any node out; give --plan PLAN to see what keeps it out of a plan"
    elif replicas:
        head = f"{workload}: placed in {plan_path} ({replicas} replicas); nodes ruled out{where}"
        none = "  no rule rules any node out"
    else:
        head = f"{workload}: not placed in {plan_path}; why{where}"
        none = "  no rule rules it out here"
    return "\n".join([head, *(reason_lines(reasons, "  ") or [none])])
