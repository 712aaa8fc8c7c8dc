"""A sample's family tree as a layered graph, laid out on the server and drawn as SVG.

Nodes are samples, mixes and models; edges run from what came first to what came after
(parent sample -> child sample, sample -> mix, mix -> model, model -> what it generated).
Each node sits in the layer of its longest path from a root, so a gen-3 sample's human
ancestors are on the left and the models its descendants reached are on the right.
Big families are cut per layer, with a node saying how many were left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from typing import Any

MAX_PER_LAYER = 12
NODE_W, NODE_H, GAP_X, GAP_Y = 190, 46, 70, 16
COLORS = {"sample": "#dbeafe", "synthetic": "#fde68a", "focus": "#fca5a5", "mix": "#bbf7d0", "model": "#e9d5ff",
          "more": "#e5e7eb"}


@dataclass
class Graph:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)

    def node(self, key: str, kind: str, label: str, sub: str = "", href: str | None = None) -> str:
        if key not in self.nodes:
            self.nodes[key] = {"id": key, "kind": kind, "label": label, "sub": sub, "href": href}
        return key

    def edge(self, a: str, b: str, label: str = "") -> None:
        if a != b and a in self.nodes and b in self.nodes:
            self.edges.add((a, b, label))

    def layers(self) -> list[list[str]]:
        """Longest-path layering (a cycle, which lineage should never have, is cut)."""
        parents: dict[str, list[str]] = defaultdict(list)
        for a, b, _ in self.edges:
            parents[b].append(a)
        layer: dict[str, int] = {}

        def depth(n: str, stack: frozenset[str]) -> int:
            if n in layer:
                return layer[n]
            ps = [p for p in parents.get(n, []) if p not in stack]
            d = 0 if not ps else 1 + max(depth(p, stack | {n}) for p in ps)
            layer[n] = d
            return d

        for n in self.nodes:
            depth(n, frozenset())
        out: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
        order = {"focus": 0, "sample": 1, "synthetic": 1, "mix": 2, "model": 3, "more": 4}
        for n in sorted(self.nodes, key=lambda k: (order.get(self.nodes[k]["kind"], 9), k)):
            out[layer[n]].append(n)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes.values()),
                "edges": [{"from": a, "to": b, "relation": r} for a, b, r in sorted(self.edges)]}


def build(trace: dict[str, Any], impact: dict[str, Any], members: list[tuple[str, str]],
          models: list[dict[str, Any]]) -> Graph:
    """The graph of one sample from its trace, its impact, mix memberships and model rows."""
    g = Graph()
    s = trace["sample"]
    sid = s["sample_id"]
    g.node(sid, "focus", sid[:12], f"{s['kind']} · depth {s['synth_depth']}", f"/samples/{sid}")
    for a in trace["ancestors"]:
        kind = "synthetic" if (a.get("synth_depth") or 0) > 0 else "sample"
        g.node(a["sample_id"], kind, a["sample_id"][:12], f"{a.get('kind') or '?'} · depth {a.get('synth_depth')}",
               f"/samples/{a['sample_id']}")
    for a in trace["ancestors"]:
        g.edge(a["sample_id"], a["child_id"], a["relation"])
    for d in impact["samples"]:
        g.node(d["sample_id"], "synthetic" if d["relation"].startswith("generated") else "sample", d["sample_id"][:12],
               d["relation"], f"/samples/{d['sample_id']}")
    for m in impact["mixes"]:
        g.node(m["mix_id"], "mix", m.get("name") or m["mix_id"][:16], m["mix_id"][:16], f"/mixes/{m['mix_id']}")
    for m in models:
        g.node(m["model_id"], "model", m.get("name") or m["model_id"][:16], f"{m.get('method') or ''} {m['model_id'][:14]}",
               f"/models/{m['model_id']}")
    # The model that wrote this sample (and its ancestors) and the mix it was trained on.
    for gen in trace["generated_by"]:
        g.node(gen["model_id"], "model", gen.get("name") or gen["model_id"][:16], gen["model_id"][:16], f"/models/{gen['model_id']}")
        g.edge(gen["model_id"], sid, "generated")
        if gen.get("mix_id"):
            g.node(gen["mix_id"], "mix", gen["mix_id"][:16], "trained on", f"/mixes/{gen['mix_id']}")
            g.edge(gen["mix_id"], gen["model_id"], "trained on")
    for d in impact["samples"]:
        if d.get("parent_id"):
            g.edge(d["parent_id"], d["sample_id"], d["relation"])
        elif d.get("model_id"):
            g.edge(d["model_id"], d["sample_id"], "generated")
    for mix_id, sample_id in members:
        g.edge(sample_id, mix_id, "member")
    for m in models:
        if m.get("mix_id"):
            g.edge(m["mix_id"], m["model_id"], "trained on")
        if m.get("parent_model_id"):
            g.edge(m["parent_model_id"], m["model_id"], "fine-tuned")
    return g


def svg(g: Graph) -> str:
    """Draw the graph; every label is escaped (ids and names come from the store)."""
    layers = g.layers()
    shown: dict[str, tuple[float, float]] = {}
    cut: list[tuple[int, int]] = []
    for i, layer in enumerate(layers):
        keep = layer[:MAX_PER_LAYER]
        if len(layer) > MAX_PER_LAYER:
            cut.append((i, len(layer) - MAX_PER_LAYER))
        for j, n in enumerate(keep):
            shown[n] = (20 + i * (NODE_W + GAP_X), 20 + j * (NODE_H + GAP_Y))
    rows = max([min(len(layer), MAX_PER_LAYER) + (1 if len(layer) > MAX_PER_LAYER else 0) for layer in layers] or [1])
    width = 40 + max(1, len(layers)) * (NODE_W + GAP_X) - GAP_X
    height = 40 + rows * (NODE_H + GAP_Y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>']
    for a, b, rel in sorted(g.edges):
        if a in shown and b in shown:
            (x1, y1), (x2, y2) = shown[a], shown[b]
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            mx = (sx + ex) / 2
            parts.append(f'<path d="M{sx},{sy} C{mx},{sy} {mx},{ey} {ex},{ey}" fill="none" stroke="#9ca3af" '
                         f'marker-end="url(#arrow)"><title>{escape(rel)}</title></path>')
    for n, (x, y) in shown.items():
        node = g.nodes[n]
        box = (f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{COLORS[node["kind"]]}" '
               f'stroke="#374151" stroke-width="{2 if node["kind"] == "focus" else 1}"/>'
               f'<text x="{x + 8}" y="{y + 18}" font-size="12" font-family="monospace">{escape(node["label"][:26])}</text>'
               f'<text x="{x + 8}" y="{y + 36}" font-size="10" fill="#4b5563">{escape(node["sub"][:32])}</text>')
        parts.append(f'<a href="{escape(node["href"])}">{box}</a>' if node["href"] else box)
    for i, n_more in cut:
        x, y = 20 + i * (NODE_W + GAP_X), 20 + MAX_PER_LAYER * (NODE_H + GAP_Y)
        parts.append(f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{COLORS["more"]}" '
                     f'stroke="#9ca3af"/><text x="{x + 8}" y="{y + 28}" font-size="12">+{n_more} more (see JSON)</text>')
    parts.append("</svg>")
    return "".join(parts)
