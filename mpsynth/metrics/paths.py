"""Betweenness centrality as networkx's `betweenness_centrality(graph, k, seed=seed,
normalized=True)` computes it, compiled with numba: the same pivot sources for the same seed,
Brandes' breadth-first searches and accumulation in the same order, so the same values to the last
bit (tests/test_structure.py holds it to networkx's). networkx runs each search in Python; at a
million posts with resampled intervals those searches were most of the networks step
(benchmarks/network_resamples.py)."""

from __future__ import annotations

import math
import random

import networkx as nx
import numba
import numpy as np


def betweenness(graph: nx.Graph, pivots: int | None, seed: int) -> np.ndarray:
    """Each node's normalised betweenness, in the graph's node order, from `pivots` source nodes
    drawn as networkx draws them (None, or at least the nodes there are: every node a source).
    Unweighted, undirected, endpoints left out."""
    nodes = list(graph)
    n = len(nodes)
    index = {node: i for i, node in enumerate(nodes)}
    adjacency = graph.adj
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum(np.fromiter((len(adjacency[v]) for v in nodes), np.int64, count=n))
    indices = np.fromiter(
        (index[w] for v in nodes for w in adjacency[v]), np.int64, count=int(indptr[-1])
    )
    sampled = pivots is not None and pivots < n
    sources = (
        np.array([index[s] for s in random.Random(seed).sample(nodes, pivots)], np.int64)
        if sampled
        else np.arange(n, dtype=np.int64)
    )
    values = _brandes(indptr, indices, sources)
    # networkx's _rescale: normalised, undirected, without endpoints
    if n - 1 < 2:
        return values
    if not sampled:
        return values * (1 / ((n - 1) * (n - 2)))
    k = len(sources)
    scale = np.full(n, 1 / (k * (n - 2)))
    scale[sources] = 1 / ((k - 1) * (n - 2)) if k > 1 else math.nan
    return values * scale


@numba.njit(cache=True)
def _brandes(indptr: np.ndarray, indices: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """The unnormalised betweenness from each source in turn: a breadth-first search counting
    shortest paths, then the dependencies accumulated in reverse order of discovery."""
    n = len(indptr) - 1
    found = np.zeros(n)
    sigma = np.zeros(n)
    delta = np.zeros(n)
    depth = np.full(n, -1, np.int64)
    order = np.empty(n, np.int64)
    for s in sources:
        sigma[s] = 1.0
        depth[s] = 0
        order[0] = s
        head, tail = 0, 1
        while head < tail:
            v = order[head]
            head += 1
            for p in range(indptr[v], indptr[v + 1]):
                w = indices[p]
                if depth[w] < 0:
                    depth[w] = depth[v] + 1
                    order[tail] = w
                    tail += 1
                if depth[w] == depth[v] + 1:
                    sigma[w] += sigma[v]
        for i in range(tail - 1, -1, -1):
            w = order[i]
            coefficient = (1.0 + delta[w]) / sigma[w]
            for p in range(indptr[w], indptr[w + 1]):  # w's predecessors: a level up
                v = indices[p]
                if depth[v] == depth[w] - 1:
                    delta[v] += sigma[v] * coefficient
            if w != s:
                found[w] += delta[w]
        for i in range(tail):
            w = order[i]
            sigma[w] = 0.0
            delta[w] = 0.0
            depth[w] = -1
    return found
