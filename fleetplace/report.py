"""Plain-text presentation of a plan: what a person reads after ``fleetplace plan``.

Presentation only; the numbers all come from the (verified) plan.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from placement.domain import Plan, PowerBudget, Problem, Reason


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
        parts.append(f"bound {info.bound:,.0f}")
    parts.append(f"backend {info.backend} {info.solver_version}".rstrip())
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


def render(problem: Problem, plan: Plan, max_domains: int = 40) -> str:
    """The human summary: placements per site, power budgets, unplaced work, status."""
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
    o = plan.objective
    out.append(
        f"Energy: {b.energy_cost_per_h:,.2f} per hour, {b.carbon_kg_per_h:,.1f} kg CO2 per hour. "
        f"Objective: placed work {o.placed_work:,}, energy {o.energy:,}, moves {o.moves:,}, "
        f"fragmentation {o.fragmentation:,}."
    )
    out.append("")
    if plan.unplaced:
        out.append(f"Not placed ({len(plan.unplaced)})")
        for u in plan.unplaced:
            out.append(f"  {u.workload}")
            for r in u.reasons:
                out.append(f"    - [{r.rule}] {r.message}")
    else:
        out.append("Every workload is placed.")
    return "\n".join(out)


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
