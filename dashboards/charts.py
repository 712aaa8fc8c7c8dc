"""Plotly figure specs (plain dicts) for the pages; static/app.js draws them with the bundled plotly.js."""

from __future__ import annotations

from typing import Any

LAYOUT = {"margin": {"l": 60, "r": 20, "t": 36, "b": 60}, "height": 300, "font": {"size": 12},
          "paper_bgcolor": "white", "plot_bgcolor": "#fafafa"}


def _fig(data: list[dict[str, Any]], title: str, **layout: Any) -> dict[str, Any]:
    return {"data": data, "layout": {**LAYOUT, "title": {"text": title, "x": 0.02, "xanchor": "left"}, **layout}}


def bars(rows: list[dict[str, Any]], key: str, value: str, title: str, limit: int = 25) -> dict[str, Any]:
    rows = rows[:limit]
    return _fig([{"type": "bar", "x": [str(r[key]) for r in rows], "y": [r[value] for r in rows], "name": value}], title)


def depth_histogram(rows: list[dict[str, Any]], value: str = "samples") -> dict[str, Any]:
    return _fig([{"type": "bar", "x": [f"depth {r['depth']}" for r in rows], "y": [r[value] for r in rows],
                  "marker": {"color": ["#60a5fa" if r["depth"] == 0 else "#f59e0b" for r in rows]}}],
                "Synthetic depth (0 = human)")


def funnel(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked bars per run and kind: kept (not rewritten), rewritten, dropped."""
    labels = [f"{r['run_id'][-8:]} {r['kind']}" for r in runs]
    return _fig([
        {"type": "bar", "name": "kept", "x": labels, "y": [r["kept"] - r["rewritten"] for r in runs], "marker": {"color": "#34d399"}},
        {"type": "bar", "name": "rewritten (PII scrubbed)", "x": labels, "y": [r["rewritten"] for r in runs], "marker": {"color": "#60a5fa"}},
        {"type": "bar", "name": "dropped", "x": labels, "y": [r["dropped"] for r in runs], "marker": {"color": "#f87171"}},
    ], "Curation funnel per run and kind", barmode="stack")


def composition(d: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"by_{col}", _fig([{"type": "pie", "labels": [str(r["key"]) for r in d[f"by_{col}"]],
                                 "values": [r["tokens"] for r in d[f"by_{col}"]], "hole": 0.4, "textinfo": "label+percent"}],
                               f"Tokens by {col}")) for col in ("kind", "source", "domain")]


def loss_curves(chain: list[dict[str, Any]]) -> dict[str, Any]:
    return _fig([{"type": "scatter", "mode": "lines", "name": m.get("name") or m["model_id"][:16],
                  "y": m.get("loss_curve") or []} for m in chain if m.get("loss_curve")],
                "Training loss per step (this model and its parents)", xaxis={"title": {"text": "step"}},
                yaxis={"title": {"text": "loss"}})


def evals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    sets: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["metric"] == "bits_per_char":
            sets.setdefault(r["eval_set"], []).append(r)
    return _fig([{"type": "bar", "name": name, "x": [name], "y": [rs[-1]["value"]]} for name, rs in sets.items()],
                "Bits per character (latest eval per set; lower is better)")


def loop_curves(d: dict[str, Any]) -> dict[str, Any]:
    traces = []
    for strategy, gens in d["strategies"].items():
        pts = [g for g in gens if g.get("bits_per_char") is not None]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": strategy,
                       "x": [g["generation"] for g in pts], "y": [g["bits_per_char"] for g in pts],
                       "text": [("gate ALERT: " + ", ".join(g.get("mix_moved") or []) if g.get("mix_alert") else "gate pass")
                                for g in pts]})
        alerts = [g for g in pts if g.get("mix_alert") or g.get("output_alert")]
        if alerts:
            traces.append({"type": "scatter", "mode": "markers", "name": f"{strategy}: drift alert",
                           "x": [g["generation"] for g in alerts], "y": [g["bits_per_char"] for g in alerts],
                           "marker": {"symbol": "x", "size": 14, "color": "#dc2626"}})
    return _fig(traces, "Held-out human text: bits/char per generation (x = drift alert)",
                xaxis={"title": {"text": "generation"}, "dtick": 1}, yaxis={"title": {"text": "bits/char"}}, height=380)


def drift_metric(metric: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    x = list(range(1, len(points) + 1))
    return _fig([
        {"type": "scatter", "mode": "lines", "name": "threshold", "x": x, "y": [p["threshold"] for p in points],
         "line": {"color": "#9ca3af", "dash": "dot"}, "fill": "tozeroy", "fillcolor": "rgba(52,211,153,0.12)"},
        {"type": "scatter", "mode": "lines+markers", "name": "distance", "x": x, "y": [p["distance"] for p in points],
         "text": [p["subject"] for p in points],
         "marker": {"color": ["#dc2626" if p["alert"] else "#2563eb" for p in points], "size": 8}},
    ], metric, height=240, showlegend=False, xaxis={"title": {"text": "check"}, "dtick": 1},
        margin={"l": 50, "r": 10, "t": 30, "b": 40})


def score_histogram(d: dict[str, Any]) -> dict[str, Any]:
    """Stacked bars: how many samples of each source fell in each score bin."""
    bins = d["bins"]
    x = [round((i + 0.5) / bins, 3) for i in range(bins)]
    by_source: dict[str, list[int]] = {}
    for r in d["histogram"]:
        by_source.setdefault(str(r["source"]), [0] * bins)[int(r["bin"])] = int(r["n"])
    what = "positive-class probability" if d["binary"] else "winning class's probability"
    return _fig([{"type": "bar", "name": src, "x": x, "y": ys} for src, ys in by_source.items()],
                f"Scores given ({what}), by source", barmode="stack",
                xaxis={"title": {"text": "score"}, "range": [0, 1]}, yaxis={"title": {"text": "samples"}})


def search_points(s: dict[str, Any]) -> dict[str, Any]:
    """Each proxy's weight of each group against its target loss; the chosen weights' confirming
    proxy and the recipe's own weights as larger marks."""
    res = s.get("result") or {}
    groups = res.get("groups") or [g["name"] for g in s["recipe"]["groups"]]
    proxies = [p for p in s["proxies"] if p["role"] == "proxy"]
    palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]
    data = []
    for i, g in enumerate(groups):
        color = palette[i % len(palette)]
        data.append({"type": "scatter", "mode": "markers", "name": f"{g} (proxies)", "x": [p["weights"][i] for p in proxies],
                     "y": [p["target_bpc"] for p in proxies], "marker": {"color": color, "size": 8}})
        for role, symbol in (("confirm-chosen", "star"), ("confirm-hand", "diamond")):
            c = [p for p in s["proxies"] if p["role"] == role]
            if c:
                data.append({"type": "scatter", "mode": "markers", "name": f"{g} ({role.split('-')[1]}, fresh seed)",
                             "x": [c[0]["weights"][i]], "y": [c[0]["target_bpc"]],
                             "marker": {"color": color, "size": 16, "symbol": symbol, "line": {"width": 1, "color": "#111"}}})
    return _fig(data, "Proxies: each group's weight against target bits/char (star: chosen, diamond: recipe)",
                xaxis={"title": {"text": "group weight"}, "range": [0, 1]}, yaxis={"title": {"text": "target bits/char"}})
