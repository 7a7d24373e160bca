"""A deterministic layered (top-to-bottom) layout of a blueprint graph, as the widgets' JSON.

No graphviz: the classic Sugiyama steps written over plain lists, with networkx only as the input.

1. **Levels.** Every expanded DO_WHILE body is laid out on its own, then stands in its parent
   level as one rectangular *block* under the DO_WHILE node. Groups are therefore boxes that no
   foreign node can enter, nested loops nest boxes, and the loop's exit edge is laid out from the
   block (the task after a loop sits below its body).
2. **Layers** by longest path from the roots, ignoring "loop" back-edges (and breaking any other
   cycle at the earliest node), with ``G.graph["layout_constraints"]`` as extra, undrawn edges.
3. **Dummy vertices** on edges that span several layers; their positions become the bend points.
4. **Order** within layers by alternating barycenter sweeps, ties kept in insertion order; the
   order with the fewest crossings wins.
5. **x coordinates**: repeated sweeps that pull each vertex to the mean of its neighbours in the
   previous layer, solved per layer as an isotonic regression (pool adjacent violators), which
   keeps the order and the minimum gaps exactly, so nodes never overlap.

Node sizes come from label lengths. Everything iterates in insertion order and coordinates are
rounded, so the same graph gives byte-identical JSON.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, TypedDict

import networkx as nx

__all__ = ["Layout", "LayoutEdge", "LayoutGroup", "LayoutNode", "layout", "node_size"]


class LayoutNode(TypedDict):
    id: str
    ref: str | None
    label: str
    sublabel: str
    type: str
    shape: str
    x: float
    y: float
    w: float
    h: float
    parent: str | None
    badge: str | None
    collapsible: bool
    collapsed: bool


class LayoutEdge(TypedDict):
    id: str
    source: str
    target: str
    label: str | None
    kind: str
    points: list[list[float]]


class LayoutGroup(TypedDict):
    id: str
    label: str
    x: float
    y: float
    w: float
    h: float


class Layout(TypedDict):
    width: float
    height: float
    nodes: list[LayoutNode]
    edges: list[LayoutEdge]
    groups: list[LayoutGroup]


MARGIN = 20.0
NODE_GAP = 28.0  # between two nodes of a layer
DUMMY_GAP = 14.0  # when a bend point is involved
LAYER_GAP = 44.0  # between layers (edge labels sit here)
GROUP_PAD = 16.0  # group box padding left, right and bottom
GROUP_PAD_TOP = 26.0  # room for the group label
NODE_H = 44.0
DIAMOND_H = 56.0
#: share of a diamond's width its label / sublabel line can use (the sides slant)
DIAMOND_LABEL_ROOM, DIAMOND_SUBLABEL_ROOM = 0.55, 0.5
TERMINAL_W, TERMINAL_H = 84.0, 34.0
MIN_W, MAX_W = 120.0, 260.0
LABEL_CHAR, SUBLABEL_CHAR = 7.6, 6.3  # average glyph widths at 13 px bold / 11 px
ICON_SPACE, PAD_X = 20.0, 14.0
SWEEPS = 8
X_PASSES = 6


def _even(v: float) -> float:
    return float(2 * math.ceil(v / 2 - 1e-9))


def node_size(attrs: dict[str, Any]) -> tuple[float, float]:
    """Width and height of a node: from its label lengths, clamped; terminals are small pills.

    Sizes are even whole pixels and centres whole pixels, so that every coordinate is exact (a
    multiple of 0.5) and aligned centres compare equal."""
    if attrs.get("type") in ("START", "END"):
        return TERMINAL_W, TERMINAL_H
    label_w = len(str(attrs.get("label") or "")) * LABEL_CHAR + ICON_SPACE
    sublabel_w = len(str(attrs.get("sublabel") or "")) * SUBLABEL_CHAR
    if attrs.get("shape") == "diamond":  # text only fits in the middle of a diamond
        w = max(label_w / DIAMOND_LABEL_ROOM, sublabel_w / DIAMOND_SUBLABEL_ROOM) + 10
        return _even(min(max(w, MIN_W + 20), MAX_W + 80)), DIAMOND_H
    w = max(label_w, sublabel_w) + 2 * PAD_X
    return _even(min(max(w, MIN_W), MAX_W)), NODE_H


# ------------------------------------------------------------------------------------------------
# One level: the direct members of a group (or the top level), blocks standing for nested groups


@dataclass
class _Item:
    key: str  # node id, or the group (DO_WHILE) id of a block
    block: bool
    w: float
    h: float
    layer: int = 0
    x: float = 0.0  # centre, relative to the level
    y: float = 0.0  # top, relative to the level


@dataclass
class _Level:
    group: str | None
    items: list[_Item] = field(default_factory=list)
    index: dict[tuple[str, bool], int] = field(default_factory=dict)
    edges: list[tuple[int, int]] = field(default_factory=list)  # drawn, deduplicated
    constraints: list[tuple[int, int]] = field(default_factory=list)
    linked: set[tuple[int, int, bool]] = field(default_factory=set)
    back: set[tuple[int, int]] = field(default_factory=set)  # edges reversed to break a cycle
    routes: dict[tuple[int, int], list[tuple[float, float, float]]] = field(default_factory=dict)
    layer_top: list[float] = field(default_factory=list)
    layer_h: list[float] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    ox: float = 0.0  # absolute origin
    oy: float = 0.0

    def add(self, key: str, block: bool, w: float, h: float) -> None:
        self.index[(key, block)] = len(self.items)
        self.items.append(_Item(key, block, w, h))

    def link(self, a: int, b: int, constraint: bool = False) -> None:
        if a == b:
            return
        if (a, b, constraint) not in self.linked:
            self.linked.add((a, b, constraint))
            (self.constraints if constraint else self.edges).append((a, b))

    def arrange(self) -> None:
        """Layers, bend points, order and coordinates of this level's items (relative)."""
        layers = self._layers()
        depth = max(layers, default=-1) + 1
        for item, k in zip(self.items, layers, strict=True):
            item.layer = k
        # vertices: items, then one dummy per layer crossed by a long edge
        n = len(self.items)
        vlayer = list(layers)
        vw = [it.w for it in self.items]
        up: list[list[int]] = [[] for _ in range(n)]
        down: list[list[int]] = [[] for _ in range(n)]
        chains: dict[tuple[int, int], list[int]] = {}
        for a, b in self.edges:
            if (a, b) in self.back:
                continue
            chain = [a]
            for k in range(layers[a] + 1, layers[b]):
                vlayer.append(k)
                vw.append(0.0)
                up.append([])
                down.append([])
                chain.append(len(vlayer) - 1)
            chain.append(b)
            for u, v in zip(chain, chain[1:], strict=False):
                down[u].append(v)
                up[v].append(u)
            chains[(a, b)] = chain[1:-1]
        order: list[list[int]] = [[] for _ in range(depth)]
        for v, k in enumerate(vlayer):
            order[k].append(v)
        order = _reduce_crossings(order, up, down, len(vlayer))
        xs = _assign_x(order, up, down, vw, n)

        xs = [float(round(x)) for x in xs]
        left = min((xs[v] - vw[v] / 2 for v in range(len(vlayer))), default=0.0)
        right = max((xs[v] + vw[v] / 2 for v in range(len(vlayer))), default=0.0)
        self.layer_h = [0.0] * depth
        for it in self.items:
            self.layer_h[it.layer] = max(self.layer_h[it.layer], it.h)
        self.layer_top = []
        y = 0.0
        for k in range(depth):
            self.layer_h[k] = self.layer_h[k] or 10.0
            self.layer_top.append(y)
            y += self.layer_h[k] + LAYER_GAP
        for v, it in enumerate(self.items):
            it.x = xs[v] - left
            it.y = self.layer_top[it.layer] + (self.layer_h[it.layer] - it.h) / 2
        self.routes = {}
        for pair, dummies in chains.items():
            self.routes[pair] = [(xs[d] - left, *self._band(vlayer[d])) for d in dummies]
        self.width = _even(right - left)
        self.height = y - LAYER_GAP if depth else 0.0

    def _band(self, k: int) -> tuple[float, float]:
        """Top and bottom y of layer ``k`` (relative)."""
        return self.layer_top[k], self.layer_top[k] + self.layer_h[k]

    def _layers(self) -> list[int]:
        """Longest-path layers over edges + constraints; a cycle is broken at its earliest node."""
        n = len(self.items)
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        for a, b in dict.fromkeys([*self.edges, *self.constraints]):
            succs[a].append(b)
            preds[b].append(a)
        remaining = [len(p) for p in preds]
        done = [False] * n
        layer = [0] * n
        ready = [v for v in range(n) if remaining[v] == 0]
        placed = 0
        while placed < n:
            if not ready:  # a cycle: cut the edges into the earliest unplaced node
                v = next(v for v in range(n) if not done[v])
                for u in preds[v]:
                    if not done[u]:
                        self.back.add((u, v))
                remaining[v] = 0
                heapq.heappush(ready, v)
            v = heapq.heappop(ready)
            if done[v]:
                continue
            done[v] = True
            placed += 1
            layer[v] = max((layer[u] + 1 for u in preds[v] if done[u] and (u, v) not in self.back), default=0)
            for s in succs[v]:
                if not done[s]:
                    remaining[s] -= 1
                    if remaining[s] == 0:
                        heapq.heappush(ready, s)
        return layer


def _reduce_crossings(
    order: list[list[int]], up: list[list[int]], down: list[list[int]], nv: int
) -> list[list[int]]:
    pos = [0] * nv
    for layer in order:
        for i, v in enumerate(layer):
            pos[v] = i
    best = [list(layer) for layer in order]
    best_crossings = _crossings(order, down, pos)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        ks = range(1, len(order)) if downward else range(len(order) - 2, -1, -1)
        nbrs = up if downward else down
        for k in ks:
            keyed = []
            for i, v in enumerate(order[k]):
                ns = nbrs[v]
                bary = sum(pos[u] for u in ns) / len(ns) if ns else float(pos[v])
                keyed.append((bary, i, v))
            keyed.sort()
            order[k] = [v for _, _, v in keyed]
            for i, v in enumerate(order[k]):
                pos[v] = i
        crossings = _crossings(order, down, pos)
        if crossings < best_crossings:
            best_crossings = crossings
            best = [list(layer) for layer in order]
        if best_crossings == 0:
            break
    return best


def _crossings(order: list[list[int]], down: list[list[int]], pos: list[int]) -> int:
    total = 0
    for layer in order[:-1]:
        targets = [pos[v] for u in layer for v in sorted(down[u], key=pos.__getitem__)]
        total += _inversions(targets)
    return total


def _inversions(seq: list[int]) -> int:
    """Pairs i < j with seq[i] > seq[j] (merge sort count; plain loops for short lists)."""
    if len(seq) < 2:
        return 0
    if len(seq) <= 16:
        return sum(1 for i, a in enumerate(seq) for b in seq[i + 1 :] if a > b)
    count = 0
    width = 1
    a = list(seq)
    n = len(a)
    while width < n:
        merged: list[int] = []
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            i, j = lo, mid
            while i < mid and j < hi:
                if a[i] <= a[j]:
                    merged.append(a[i])
                    i += 1
                else:
                    merged.append(a[j])
                    count += mid - i
                    j += 1
            merged.extend(a[i:mid])
            merged.extend(a[j:hi])
        a = merged
        width *= 2
    return count


def _assign_x(
    order: list[list[int]], up: list[list[int]], down: list[list[int]], vw: list[float], n_real: int
) -> list[float]:
    """Centre x of every vertex, keeping each layer's order and minimum gaps.

    Alternating sweeps: going down, a vertex moves to the mean x of the vertices above it; going
    up, to the mean of those below. The children of a fan-out (one parent, several children) move
    together, keeping their spread, so that their mean comes under the parent (likewise the
    parents of a fan-in going up); so chains stay straight and siblings do not bunch up.
    Each layer's wishes are made feasible (order and gaps kept) by a weighted isotonic
    regression in which bend points weigh more, which keeps long edges straight.
    """
    xs = [0.0] * len(vw)
    weight = [1.0 if v < n_real else 4.0 for v in range(len(vw))]
    offsets: list[list[float]] = []
    for layer in order:
        offs = [0.0]
        for a, b in zip(layer, layer[1:], strict=False):
            gap = NODE_GAP if a < n_real and b < n_real else DUMMY_GAP
            offs.append(offs[-1] + vw[a] / 2 + gap + vw[b] / 2)
        offsets.append(offs)
        mid = offs[-1] / 2
        for v, o in zip(layer, offs, strict=True):
            xs[v] = o - mid

    def place(k: int, nbrs: list[list[int]], back: list[list[int]]) -> float:
        """Move layer ``k`` towards its neighbours in ``nbrs``; returns the largest move."""
        z = []
        for v, o in zip(order[k], offsets[k], strict=True):
            ns = nbrs[v]
            if not ns:
                want = xs[v]
            elif len(ns) == 1 and len(back[ns[0]]) > 1:  # one of a fan: the fan centres on its hub
                hub = ns[0]
                want = xs[v] + xs[hub] - sum(xs[u] for u in back[hub]) / len(back[hub])
            else:
                want = sum(xs[u] for u in ns) / len(ns)
            z.append(want - o)
        ws = [weight[v] for v in order[k]]
        moved = 0.0
        for v, o, y in zip(order[k], offsets[k], _isotonic(z, ws), strict=True):
            moved = max(moved, abs(xs[v] - y - o))
            xs[v] = y + o
        return moved

    depth = len(order)
    for _ in range(X_PASSES):
        moved = max((place(k, up, down) for k in range(1, depth)), default=0.0)
        moved = max([moved, *(place(k, down, up) for k in range(depth - 2, -1, -1))])
        if moved < 0.25:  # settled
            break
    for k in range(1, depth):
        place(k, up, down)
    return xs


def _isotonic(z: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``z`` in weighted least squares (pool adjacent
    violators)."""
    if all(a <= b for a, b in zip(z, z[1:], strict=False)):
        return z
    blocks: list[list[float]] = []  # [sum of w*z, sum of w, count]
    for value, w in zip(z, weights, strict=True):
        blocks.append([value * w, w, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, sw, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += sw
            blocks[-1][2] += c
    out: list[float] = []
    for s, sw, c in blocks:
        out.extend([s / sw] * int(c))
    return out


# ------------------------------------------------------------------------------------------------
# The whole graph


def _chains(graph: nx.DiGraph, groups: set[str]) -> dict[str, tuple[str, ...]]:
    """Node id -> the groups enclosing it, outermost first."""
    out: dict[str, tuple[str, ...]] = {}

    def chain(n: str) -> tuple[str, ...]:
        if n in out:
            return out[n]
        seen: list[str] = []
        p = graph.nodes[n].get("parent")
        while p in groups and p not in seen:
            seen.append(p)
            p = graph.nodes[p].get("parent")
        out[n] = tuple(reversed(seen))
        return out[n]

    for n in graph.nodes:
        chain(n)
    return out


def _r(v: float) -> float:
    return round(v, 1) + 0.0  # + 0.0 turns -0.0 into 0.0


def layout(graph: nx.DiGraph) -> Layout:
    """Lay out a ``blueprint_graph`` (or any DiGraph with the same attributes) as the contract JSON.

    Node ``parent`` attributes naming another node make groups (expanded DO_WHILE bodies); edges
    of kind "loop" are back-edges, routed up the right side of their group.
    """
    nodes = list(graph.nodes)
    parents = {p for n in nodes if (p := graph.nodes[n].get("parent")) is not None and p in graph}
    groups = {n for n in nodes if n in parents}
    in_order = [n for n in nodes if n in groups]  # iteration order never depends on hashing
    chains = _chains(graph, groups)
    sizes = {n: node_size(graph.nodes[n]) for n in nodes}

    levels: dict[str | None, _Level] = {None: _Level(None)}
    for g in nodes:
        if g in groups:
            levels[g] = _Level(g)
    for n in nodes:  # members in insertion order; a group's block right after its DO_WHILE node
        level = levels[chains[n][-1] if chains[n] else None]
        level.add(n, False, *sizes[n])
        if n in groups:
            level.add(n, True, 0.0, 0.0)

    def rep(n: str, depth: int) -> tuple[str, bool]:
        c = chains[n]
        return (n, False) if len(c) == depth else (c[depth], True)

    def common(u: str, v: str) -> int:
        cu, cv = chains[u], chains[v]
        d = 0
        while d < len(cu) and d < len(cv) and cu[d] == cv[d]:
            d += 1
        return d

    edge_pairs: dict[tuple[str, str], tuple[_Level, int, int, bool]] = {}
    for u, v, attrs in graph.edges(data=True):
        d = common(u, v)
        level = levels[chains[u][d - 1] if d else None]
        if attrs.get("kind") == "loop":  # (the DO_WHILE, its block)
            edge_pairs[(u, v)] = (level, level.index[rep(v, d)], level.index[rep(u, d)], True)
            continue
        # a loop's exit edge is laid out from below the loop's body
        exit_edge = u in groups and chains[v][: len(chains[u]) + 1] != (*chains[u], u)
        ia = level.index[(u, True) if exit_edge else rep(u, d)]
        ib = level.index[rep(v, d)]
        level.link(ia, ib)
        edge_pairs[(u, v)] = (level, ia, ib, exit_edge)
    for a, b in graph.graph.get("layout_constraints") or ():
        if a in graph and b in graph and a != b:
            d = common(a, b)
            level = levels[chains[a][d - 1] if d else None]
            level.link(level.index[rep(a, d)], level.index[rep(b, d)], constraint=True)

    # inner levels first: a block's size is its level's size plus padding
    for g in sorted(in_order, key=lambda g: -len(chains[g])):
        lv = levels[g]
        lv.arrange()
        parent = levels[chains[g][-1] if chains[g] else None]
        block = parent.items[parent.index[(g, True)]]
        block.w = lv.width + 2 * GROUP_PAD
        block.h = lv.height + GROUP_PAD_TOP + GROUP_PAD
    top = levels[None]
    top.arrange()

    # absolute positions, outer levels first
    top.ox, top.oy = MARGIN, MARGIN
    boxes: dict[str, tuple[float, float, float, float]] = {}
    rects: dict[str, tuple[float, float, float, float]] = {}
    for key in [None, *sorted(in_order, key=lambda g: len(chains[g]))]:
        lv = levels[key]
        for it in lv.items:
            x, y = lv.ox + it.x - it.w / 2, lv.oy + it.y
            if it.block:
                boxes[it.key] = (x, y, it.w, it.h)
                inner = levels[it.key]
                inner.ox, inner.oy = x + GROUP_PAD, y + GROUP_PAD_TOP
            else:
                rects[it.key] = (x, y, it.w, it.h)

    out_nodes: list[LayoutNode] = []
    for n in nodes:
        a = graph.nodes[n]
        x, y, w, h = rects[n]
        parent = a.get("parent")
        out_nodes.append({
            "id": str(n), "ref": a.get("ref"), "label": str(a.get("label") or n),
            "sublabel": str(a.get("sublabel") or ""), "type": str(a.get("type") or ""),
            "shape": str(a.get("shape") or "rect"), "x": _r(x), "y": _r(y), "w": _r(w), "h": _r(h),
            "parent": str(parent) if parent in groups else None, "badge": a.get("badge"),
            "collapsible": bool(a.get("collapsible")), "collapsed": bool(a.get("collapsed")),
        })  # fmt: skip

    out_edges: list[LayoutEdge] = []
    seen_ids: dict[str, int] = {}
    for u, v, attrs in graph.edges(data=True):
        level, ia, ib, special = edge_pairs[(u, v)]
        if attrs.get("kind") == "loop":
            points = _loop_points(rects[u], rects[v], level, ia, ib, boxes)
        elif (ia, ib) in level.back:
            points = _back_points(rects[u], rects[v])
        else:
            points = _forward_points(rects[u], rects[v], level, ia, ib, boxes if special else None)
        base = str(attrs.get("id") or f"{u}->{v}")
        seen_ids[base] = seen_ids.get(base, 0) + 1
        edge_id = base if seen_ids[base] == 1 else f"{base}#{seen_ids[base]}"
        out_edges.append({
            "id": edge_id, "source": str(u), "target": str(v), "label": attrs.get("label"),
            "kind": str(attrs.get("kind") or "next"), "points": [[_r(px), _r(py)] for px, py in points],
        })  # fmt: skip

    out_groups: list[LayoutGroup] = []
    for g in nodes:
        if g in boxes:
            x, y, w, h = boxes[g]
            label = str(graph.nodes[g].get("label") or g)
            out_groups.append({"id": str(g), "label": label, "x": _r(x), "y": _r(y), "w": _r(w), "h": _r(h)})

    width = max([top.width + 2 * MARGIN, *(x + w + MARGIN for x, _, w, _ in rects.values())])
    height = max([top.height + 2 * MARGIN, *(y + h + MARGIN for _, y, _, h in rects.values())])
    return {
        "width": _r(width),
        "height": _r(height),
        "nodes": out_nodes,
        "edges": out_edges,
        "groups": out_groups,
    }


Rect = tuple[float, float, float, float]


def _bottom(r: Rect) -> tuple[float, float]:
    return (r[0] + r[2] / 2, r[1] + r[3])


def _top(r: Rect) -> tuple[float, float]:
    return (r[0] + r[2] / 2, r[1])


def _gap_below(level: _Level, item: int) -> tuple[float, float]:
    """Absolute y range of the free band under an item's layer (before the next layer)."""
    k = level.items[item].layer
    start = level.oy + level.layer_top[k] + level.layer_h[k]
    return start, start + LAYER_GAP


def _forward_points(
    src: Rect, dst: Rect, level: _Level, ia: int, ib: int, boxes: dict[str, Rect] | None
) -> list[tuple[float, float]]:
    """Source bottom-centre, the bend points of the level's route, target top-centre.

    A loop's exit edge (``boxes`` given) leaves the DO_WHILE downwards, turns left above the
    body's box, runs down beside it and joins the route below it.
    """
    route = [(level.ox + x, level.oy + y0, level.oy + y1) for x, y0, y1 in level.routes.get((ia, ib), [])]
    points = [_bottom(src)]
    if boxes is not None:
        block = level.items[ia]
        bx, by, _, bh = boxes[block.key]
        g0, g1 = _gap_below(level, ia - 1)  # the DO_WHILE's layer, right above its block
        y_turn = g0 + (g1 - g0) / 3
        below0, below1 = _gap_below(level, ia)
        y_below = below0 + (below1 - below0) / 2
        xl = bx - DUMMY_GAP / 2 - 2
        next_x = route[0][0] if route else _top(dst)[0]
        points += [(points[0][0], y_turn), (xl, y_turn), (xl, y_below), (next_x, y_below)]
    for x, y0, y1 in route:
        points += [(x, y0), (x, y1)]
    points.append(_top(dst))
    return _dedupe(points)


def _loop_points(
    src: Rect, loop: Rect, level: _Level, i_loop: int, i_block: int, boxes: dict[str, Rect]
) -> list[tuple[float, float]]:
    """A back-edge from a body's last node up the right side of the body's box to the DO_WHILE's
    right-hand side: down into the gap under the source, right into the box padding, up above
    the box, and into the DO_WHILE from the right."""
    block = level.items[i_block]
    if not block.block or block.key not in boxes:
        return _back_points(src, loop)
    bx, by, bw, _ = boxes[block.key]
    sx, sy = _bottom(src)
    y_under = sy + min(12.0, LAYER_GAP / 3, GROUP_PAD * 0.6)
    xr = bx + bw - GROUP_PAD / 2
    g0, g1 = _gap_below(level, i_loop)
    y_above = g0 + 2 * (g1 - g0) / 3
    lx, ly, lw, lh = loop
    x_in = lx + lw + 12
    return _dedupe([
        (sx, sy), (sx, y_under), (xr, y_under), (xr, y_above), (x_in, y_above), (x_in, ly + lh / 2),
        (lx + lw, ly + lh / 2),
    ])  # fmt: skip


def _back_points(src: Rect, dst: Rect) -> list[tuple[float, float]]:
    """Any other upward edge: out of the source's right side, up beside both, into the target's."""
    sx, sy, sw, sh = src
    tx, ty, tw, th = dst
    x = max(sx + sw, tx + tw) + 14
    return [(sx + sw, sy + sh / 2), (x, sy + sh / 2), (x, ty + th / 2), (tx + tw, ty + th / 2)]


def _dedupe(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for p in points:
        if not out or (abs(out[-1][0] - p[0]) > 1e-6 or abs(out[-1][1] - p[1]) > 1e-6):
            out.append(p)
    return out
