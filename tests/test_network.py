"""Region -> site latency over the fleet's links (placement.core.network)."""

from __future__ import annotations

import pytest

from placement.core.domain import Fleet, Link, Redundancy, Site, SiteKind
from placement.core.network import latency_table


def _site(name: str) -> Site:
    return Site(
        name=name, kind=SiteKind.DATACENTER, region="r", capacity_kw=10.0, pue=1.2, redundancy=Redundancy.N
    )


def _fleet(links: tuple[Link, ...], regions: tuple[str, ...] = ("eu", "us", "ap")) -> Fleet:
    return Fleet(
        gpu_types=(),
        sites=(_site("dc1"), _site("dc2"), _site("edge1")),
        power_domains=(),
        nodes=(),
        regions=regions,
        links=links,
    )


# eu --5-- dc1 --3-- edge1 ; eu --20-- edge1 (direct but slower) ; dc1 --40-- dc2 ; us --2-- dc2
LINKS = (
    Link("eu", "dc1", 5.0),
    Link("dc1", "edge1", 3.0),
    Link("edge1", "eu", 20.0),  # written backwards: links are undirected
    Link("dc1", "dc2", 40.0),
    Link("us", "dc2", 2.0),
)


@pytest.mark.parametrize(
    ("region", "site", "expected_ms"),
    [
        pytest.param("eu", "dc1", 5.0, id="direct link"),
        pytest.param("eu", "edge1", 8.0, id="two hops beat the slower direct link"),
        pytest.param("eu", "dc2", 45.0, id="two hops"),
        pytest.param("us", "dc2", 2.0, id="other region direct"),
        pytest.param("us", "edge1", 45.0, id="three hops through two sites"),
        pytest.param("us", "dc1", 42.0, id="backwards over a site"),
    ],
)
def test_shortest_path_latency(region: str, site: str, expected_ms: float) -> None:
    table = latency_table(_fleet(LINKS))
    assert table[(region, site)] == pytest.approx(expected_ms)


def test_unreachable_region_and_site_are_absent() -> None:
    links = (Link("eu", "dc1", 5.0), Link("us", "dc2", 2.0))
    table = latency_table(_fleet(links))
    assert table == {("eu", "dc1"): 5.0, ("us", "dc2"): 2.0}
    # ap has no link at all; edge1 has none either
    assert not any(region == "ap" for region, _ in table)
    assert not any(site == "edge1" for _, site in table)


def test_parallel_links_use_the_fastest() -> None:
    links = (Link("eu", "dc1", 9.0), Link("dc1", "eu", 4.0), Link("eu", "dc1", 6.0))
    assert latency_table(_fleet(links))[("eu", "dc1")] == 4.0


def test_regions_reached_only_through_another_region_count() -> None:
    # a path may pass through another user region
    links = (Link("ap", "eu", 30.0), Link("eu", "dc1", 5.0))
    table = latency_table(_fleet(links))
    assert table[("ap", "dc1")] == 35.0
    assert ("ap", "eu") not in table  # only sites are destinations


def test_no_links_gives_an_empty_table() -> None:
    assert latency_table(_fleet(())) == {}
