"""``fleetplace report``: one self-contained HTML page with PNG charts of a plan, or of two.

``write_report(out_dir, problem, label, plan, compare=None)`` writes ``index.html`` and the
charts as PNG files beside it; the page embeds the same PNGs as ``data:`` URIs, so it needs
nothing else (no script, no style sheet, no font or image from elsewhere) and can be mailed or
archived as one file. Charts, each drawn by matplotlib (Agg) from the plan alone:

* ``site_power.png``: IT draw against the usable cap, per site (and the other plan's draw);
* ``domain_power.png``: the same for the most loaded power domains;
* ``gpus.png``: GPUs in use by site and GPU type (a shared GPU counts as its used share);
* ``unplaced.png``: the work left unplaced, per workload, by the rule that keeps it out;
* ``moves.png``: per site, replicas placed, moved in, moved out and evicted: against the other
  plan with ``compare``, else against the input's current placement.

Presentation only; every number comes from the plan, its budgets and its instance.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from placement.core.domain import Plan, PowerBudget, Problem
from placement.core.moves import displaced
from placement.diff import PlanDiff, diff_plans
from placement.replan import running_plan, with_current

log = logging.getLogger(__name__)

MAX_DOMAINS = 30
MAX_UNPLACED = 20
WIDTH_IN = 10.0
DPI = 96
COLOURS = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"]


def _figure(rows: int) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = min(16.0, max(2.6, 0.32 * rows + 1.4))
    return plt.subplots(figsize=(WIDTH_IN, height), dpi=DPI)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _power_chart(title: str, names: list[str], usable_kw: list[float], series: list[tuple[str, list[float]]]) -> bytes:  # fmt: skip
    import numpy as np

    fig, ax = _figure(len(names) * max(1, len(series)))
    y = np.arange(len(names))
    height = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series):
        ax.barh(y + (i - (len(series) - 1) / 2) * height, values, height, label=label, color=COLOURS[i])
    ax.scatter(usable_kw, y, marker="|", s=300, color="black", label="usable cap", zorder=3)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("IT power, kW")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _gpu_chart(problem: Problem, plan: Plan) -> bytes:
    node_site = {n.name: n.site for n in problem.fleet.nodes}
    node_type = {n.name: n.gpu_type for n in problem.fleet.nodes}
    total: Counter[str] = Counter()
    for n in problem.fleet.nodes:
        total[n.site] += n.gpu_count
    used: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for g in plan.budgets.gpus:
        if g.used_milli and g.node in node_site:
            used[node_type[g.node]][node_site[g.node]] += g.used_milli / 1000
    sites = sorted(total)
    fig, ax = _figure(len(sites))
    left = [0.0] * len(sites)
    for i, gpu_type in enumerate(sorted(used)):
        values = [used[gpu_type][s] for s in sites]
        ax.barh(sites, values, left=left, label=gpu_type, color=COLOURS[i % len(COLOURS)])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.scatter([total[s] for s in sites], sites, marker="|", s=300, color="black", label="GPUs in the site")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("GPUs in use")
    ax.set_title("GPUs in use by site and GPU type")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _unplaced_rows(problem: Problem, plan: Plan) -> list[tuple[str, float, int, str, str]]:
    """(workload, GPUs its fewest replicas need, priority, first rule, first message), largest work first."""
    workloads = {w.name: w for w in problem.workloads}
    rows = []
    for u in plan.unplaced:
        w = workloads.get(u.workload)
        if w is None:
            continue
        gpus = w.min_replicas * w.work_milli / 1000
        rule = u.reasons[0].rule if u.reasons else ""
        message = u.reasons[0].message if u.reasons else ""
        rows.append((u.workload, gpus, w.priority, rule, message))
    rows.sort(key=lambda r: (-r[1] * r[2], r[0]))
    return rows


def _unplaced_chart(rows: list[tuple[str, float, int, str, str]]) -> bytes:
    shown = rows[:MAX_UNPLACED]
    fig, ax = _figure(len(shown) or 1)
    if not shown:
        ax.barh(["unplaced"], [0.0], color=COLOURS[0])
        ax.set_title("Unplaced work: every workload is placed")
    else:
        rules = sorted({r[3] for r in shown})
        colour = {rule: COLOURS[i % len(COLOURS)] for i, rule in enumerate(rules)}
        ax.barh(
            [r[0] for r in shown],
            [r[1] * r[2] for r in shown],
            color=[colour[r[3]] for r in shown],
        )
        for rule in rules:
            ax.barh([shown[0][0]], [0], color=colour[rule], label=rule or "no reason")
        ax.legend(title="first reason", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        more = f" (the {MAX_UNPLACED} largest of {len(rows)})" if len(rows) > MAX_UNPLACED else ""
        ax.set_title(f"Unplaced work{more}")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("priority x GPUs of its fewest replicas")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _moves_by_site(diff: PlanDiff) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for a in diff.added:
        out[a.at.site]["placed"] += 1
    for m in diff.moved:
        out[m.source.site]["moved out"] += 1
        out[m.target.site]["moved in"] += 1
    for e in diff.evicted:
        out[e.at.site]["evicted"] += 1
    return out


def _moves_chart(diff: PlanDiff, against: str) -> bytes:
    per_site = _moves_by_site(diff)
    sites = sorted(per_site) or ["(none)"]
    fig, ax = _figure(len(sites))
    left = [0] * len(sites)
    for i, kind in enumerate(("placed", "moved in", "moved out", "evicted")):
        values = [per_site[s][kind] if s in per_site else 0 for s in sites]
        ax.barh(sites, values, left=left, label=kind, color=COLOURS[i])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("replicas")
    ax.set_title(f"Changes per site against {against}: {diff.moves:,} moves")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _img(name: str, data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img id="{name}" src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}"></figure>'
    )


def _table(table_id: str, head: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return html.escape(str(v))

    def td(v: object) -> str:
        text = cell(v)
        numeric = (
            isinstance(v, int | float) or text.rstrip("%").replace(",", "").replace(".", "", 1).isdigit()
        )
        return f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>"

    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>'


def _gpus_used(plan: Plan) -> float:
    return sum(g.used_milli for g in plan.budgets.gpus) / 1000


def _summary_rows(plans: list[tuple[str, Plan]]) -> list[list[object]]:
    def gap(p: Plan) -> str:
        return f"{p.info.gap * 100:.2f}%" if p.info.gap is not None else "n/a"

    rows: list[list[object]] = [
        ["status", *[p.info.status.value for _, p in plans]],
        ["gap", *[gap(p) for _, p in plans]],
        ["placed work (priority x GPU thousandths x throughput %)", *[p.objective.placed_work for _, p in plans]],
        ["replicas placed", *[len(p.placements) for _, p in plans]],
        ["GPUs in use", *[_gpus_used(p) for _, p in plans]],
        ["workloads not placed", *[len(p.unplaced) for _, p in plans]],
        ["IT power, kW", *[sum(s.it_kw for s in p.budgets.sites) for _, p in plans]],
        ["energy cost per hour (sites' prices)", *[p.budgets.energy_cost_per_h for _, p in plans]],
        ["carbon, kg CO2 per hour", *[p.budgets.carbon_kg_per_h for _, p in plans]],
        ["moves (against the input's current placement)", *[p.objective.moves for _, p in plans]],
    ]  # fmt: skip
    return rows


SITE_HEAD = ["site", "usable kW", "IT kW", "headroom kW", "utilisation", "survives a feed failure"]


def _site_row(b: PowerBudget) -> list[object]:
    return [
        b.name,
        b.usable_kw,
        b.it_kw,
        b.headroom_kw,
        f"{b.utilisation_pct:.1f}%",
        "yes" if b.survives_failure else "NO",
    ]


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 62em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.6em 0; } img { max-width: 100%; height: auto; }
footer { margin-top: 3em; color: #666; font-size: 0.8em; }
"""


def render_report(
    problem: Problem, label: str, plan: Plan, compare: tuple[str, Plan] | None = None
) -> tuple[str, dict[str, bytes]]:
    """The page's HTML and its charts by file name."""
    plans = [(label, plan)] if compare is None else [compare, (label, plan)]
    charts: dict[str, bytes] = {}
    sites = sorted(plan.budgets.sites, key=lambda b: b.name)
    other = {b.name: b for b in compare[1].budgets.sites} if compare else {}
    series = [(label, [b.it_kw for b in sites])]
    if compare is not None:
        series.insert(0, (compare[0], [other[b.name].it_kw if b.name in other else 0.0 for b in sites]))
    charts["site_power.png"] = _power_chart(
        "IT power against the usable cap, per site",
        [b.name for b in sites],
        [b.usable_kw for b in sites],
        series,
    )
    domains = sorted(plan.budgets.power_domains, key=lambda b: (-b.utilisation_pct, b.name))[:MAX_DOMAINS]
    other_d = {b.name: b for b in compare[1].budgets.power_domains} if compare else {}
    d_series = [(label, [b.it_kw for b in domains])]
    if compare is not None:
        d_series.insert(
            0, (compare[0], [other_d[b.name].it_kw if b.name in other_d else 0.0 for b in domains])
        )
    more = f" (the {MAX_DOMAINS} most loaded of {len(plan.budgets.power_domains)})"
    charts["domain_power.png"] = _power_chart(
        "IT power against the usable cap, per power domain"
        + (more if len(plan.budgets.power_domains) > MAX_DOMAINS else ""),
        [f"{b.site}/{b.name}" for b in domains],
        [b.usable_kw for b in domains],
        d_series,
    )
    charts["gpus.png"] = _gpu_chart(problem, plan)
    unplaced = _unplaced_rows(problem, plan)
    charts["unplaced.png"] = _unplaced_chart(unplaced)
    if compare is not None:
        # why each replica leaves: the engine's, with the other plan as the current placement
        moves = displaced(with_current(problem, compare[1].placements), plan.placements)
        diff, against = diff_plans(compare[1], plan, moves), compare[0]
    else:
        diff, against = diff_plans(running_plan(problem), plan), "the input's current placement"
    charts["moves.png"] = _moves_chart(diff, against)

    title = f"fleetplace report: {label}" + (f" compared with {compare[0]}" if compare else "")
    info = plan.info
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p id="provenance">Backend {html.escape(info.backend)} {html.escape(info.solver_version)}, seed '
        f"{info.seed}, {info.wall_s:.1f} s, started {html.escape(info.started_at or 'n/a')}, code revision "
        f"{html.escape(info.code_revision or 'unknown')}.</p>",
        "<h2>Summary</h2>",
        _table("summary", ["", *[p[0] for p in plans]], _summary_rows(plans)),
        "<h2>Power per site</h2>",
        _img("site_power", charts["site_power.png"], "IT power against the usable cap, per site"),
        _table("sites", SITE_HEAD, [_site_row(b) for b in sites]),
        "<h2>Power per power domain</h2>",
        _img("domain_power", charts["domain_power.png"], "IT power against the usable cap, per power domain"),
        "<h2>GPUs in use by site and type</h2>",
        _img("gpus", charts["gpus.png"], "GPUs in use by site and GPU type"),
        "<h2>Unplaced work</h2>",
        _img("unplaced", charts["unplaced.png"], "Unplaced work by workload and reason"),
        _table(
            "unplaced_table",
            ["workload", "GPUs (fewest replicas)", "priority", "rule", "why"],
            [list(r) for r in unplaced],
        )
        if unplaced
        else "<p>Every workload is placed.</p>",
        "<h2>Moves</h2>",
        _img("moves", charts["moves.png"], "Replicas placed, moved and evicted per site"),
        f'<p id="moves_summary">Against {html.escape(against)}: {len(diff.added):,} placed, {len(diff.moved):,} '
        f"moved, {len(diff.evicted):,} evicted, {len(diff.retuned):,} retuned; {diff.moves:,} moves, "
        f"{diff.unforced_moves:,} not forced by the input.</p>",
        f"<footer>Written by fleetplace at {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n", charts


def write_report(
    out_dir: Path, problem: Problem, label: str, plan: Plan, compare: tuple[str, Plan] | None = None
) -> Path:
    """Write ``index.html`` (self-contained) and the charts into ``out_dir``; returns the page's path."""
    page, charts = render_report(problem, label, plan, compare)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in charts.items():
        (out_dir / name).write_bytes(data)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    log.info("report: %s (%d charts)", index, len(charts))
    return index
