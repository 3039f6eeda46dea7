"""``fleetplace report``: a self-contained HTML page with PNG charts, opened in a real headless Chromium.

Two plans of the tiny fleet go into a store (the first plan, then a rebalance that drains
dc-a-r2-n01); ``report current --compare 1`` writes the page. In the browser: every chart is a
decoded PNG image of a real size, embedded as a ``data:`` URI; the page fetches nothing; the
summary table shows both plans' numbers as the store has them; the screenshot is not blank.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import yaml

from fleetplace.store import open_store
from tests.browser import Browser
from tests.builders import REPO
from tests.cli_support import Ran, run_cli

TINY = str(REPO / "datasets" / "tiny")
SOLVE = ["--deterministic", "--time-limit", "30", "--quiet"]
CHARTS = ["site_power", "domain_power", "gpus", "unplaced", "moves"]

CHECK = """(async () => {
  const images = Array.from(document.images);
  await Promise.all(images.map((i) => i.decode().catch(() => null)));
  return {
    title: document.title,
    images: images.map((i) => ({id: i.id, complete: i.complete, width: i.naturalWidth,
                                height: i.naturalHeight, data: i.src.startsWith("data:image/png;base64,")})),
    headings: Array.from(document.querySelectorAll("h2")).map((h) => h.textContent),
    summary: Array.from(document.querySelectorAll("#summary tr")).map((r) => Array.from(r.cells).map((c) => c.textContent)),
    unplaced: Array.from(document.querySelectorAll("#unplaced_table tbody tr")).map((r) => r.cells[0].textContent),
    moves: document.querySelector("#moves_summary").textContent,
    fetched: performance.getEntriesByType("resource").map((e) => e.name),
    external: document.querySelectorAll("link, script, iframe, object, embed").length,
  };
})()"""


def run(*args: str) -> Ran:
    return run_cli(*args)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("report")
    store = str(folder / "plans.db")
    changes = folder / "changes.yaml"
    changes.write_text(yaml.safe_dump({"drainNodes": ["dc-a-r2-n01"]}))
    assert run("rebalance", TINY, "--store", store, *SOLVE, "--allow-drop").returncode == 0
    assert run("rebalance", "--store", store, "--changes", str(changes), *SOLVE).returncode == 0
    r = run("report", "current", "--compare", "1", "--store", store, "--out", str(folder / "out"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Report written to {folder / 'out' / 'index.html'}"
    return folder / "out", folder / "plans.db"


def test_the_page_shows_every_chart_in_a_real_browser(report: tuple[Path, Path]) -> None:
    out, store_path = report
    with Browser() as browser:
        page = browser.open((out / "index.html").as_uri())
        seen = page.evaluate(CHECK)
        shot = page.screenshot()
    assert seen["title"] == "fleetplace report: #2 compared with #1"
    assert [i["id"] for i in seen["images"]] == CHARTS
    for image in seen["images"]:
        assert image["complete"] and image["data"], image
        assert image["width"] >= 600 and image["height"] >= 200, image
    assert seen["headings"] == [
        "Summary",
        "Power per site",
        "Power per power domain",
        "GPUs in use by site and type",
        "Unplaced work",
        "Moves",
    ]
    assert seen["fetched"] == [] and seen["external"] == 0  # self-contained

    store = open_store(str(store_path))
    first, second = store.get_record(1), store.get_record(2)
    store.close()
    rows = {row[0]: row[1:] for row in seen["summary"]}
    assert rows[""] == ["#1", "#2"]
    assert rows["placed work (priority x GPU thousandths x throughput %)"] == [
        f"{first.placed_work:,}",
        f"{second.placed_work:,}",
    ]
    assert rows["replicas placed"] == [str(first.replicas), str(second.replicas)]
    assert rows["status"] == [first.status, second.status]
    assert "vision-batch" in seen["unplaced"]
    assert seen["moves"].startswith("Against #1: 0 placed, 0 moved, 1 evicted")
    # the drained node forced the eviction (the engine's reason, with #1 as the current placement)
    assert seen["moves"].endswith("1 moves, 0 not forced by the input.")

    from PIL import Image

    picture = Image.open(io.BytesIO(shot)).convert("L")
    assert picture.width >= 1000 and picture.height >= 1500
    low, high = picture.getextrema()
    assert high - low > 100  # text and bars on white, not a blank page


def test_the_charts_are_also_written_as_png_files(report: tuple[Path, Path]) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    for name in CHARTS:
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert base64.b64encode(data).decode() in page  # the page embeds the same image


def test_a_plan_file_needs_its_input(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert run("plan", TINY, *SOLVE, "--allow-drop", "--out", str(plan)).returncode == 0
    r = run("report", str(plan), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "--input: a plan file needs its input" in r.stderr
    r = run("report", str(plan), "--input", TINY, "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "against the input&#x27;s current placement" in (tmp_path / "out" / "index.html").read_text()
