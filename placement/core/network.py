"""Region -> site latency: shortest paths over the fleet's network links.

The links form an undirected graph whose vertices are user regions and sites (by
name); a path may pass through other sites and regions. The latency of a (user
region, site) pair is the length of the shortest path in milliseconds. Pairs with
no path are absent from the table: a workload with a latency rule cannot use such
a site. Nothing is cached between calls; callers that need the table more than once
keep the returned dict.
"""

from __future__ import annotations

import logging

import networkx as nx

from placement.core.domain import Fleet

log = logging.getLogger(__name__)


def latency_table(fleet: Fleet) -> dict[tuple[str, str], float]:
    """Shortest-path latency in ms from every user region to every reachable site.

    Parallel links between the same two endpoints count with their lowest latency.
    """
    graph: nx.Graph = nx.Graph()
    for link in fleet.links:
        if graph.has_edge(link.a, link.b):
            if link.latency_ms < graph[link.a][link.b]["latency_ms"]:
                graph[link.a][link.b]["latency_ms"] = link.latency_ms
        else:
            graph.add_edge(link.a, link.b, latency_ms=link.latency_ms)
    site_names = [s.name for s in fleet.sites]
    table: dict[tuple[str, str], float] = {}
    for region in fleet.regions:
        if region not in graph:
            log.debug("region %s has no links; no site is reachable from it", region)
            continue
        dist = nx.single_source_dijkstra_path_length(graph, region, weight="latency_ms")
        for site in site_names:
            if site in dist:
                table[(region, site)] = float(dist[site])
    return table
