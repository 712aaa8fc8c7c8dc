"""The drift gate: judge the mix about to be trained, and watch the trend across generations.

A model's output always differs from human text, so a check of the newest generated batch
alerts on every loop, the safe ones too. What decides collapse is what the next model is
trained on. `check_mix` compares a mix's training members (weighted by their repeats) with
human reference text, calibrated like `drift check`: under "replace" the mix is all model
output and moves; under "accumulate" it is mostly human text and stays within the spread of
two human samples.

`trend` reads every check a loop recorded and tests each metric for a steady move across
generations: the slope of the metric's distance from the reference against the spread of
reference-vs-reference distances (a z-test of the slope, with Bonferroni over the metrics),
and Mann-Kendall's S for monotonicity. A drift that no single generation makes significant
is caught once its trend is.
"""

from __future__ import annotations

import math
import re
from statistics import NormalDist
from typing import Any

import numpy as np
from mixline.curation.drift import (
    SIGNED,
    DriftChecker,
    DriftConfig,
    direction,
    self_consumption,
    trips_gate,
)

from mixline.errors import ConfigError, NotFoundError

GATES = ("none", "stop", "switch:accumulate", "cap:<share>")
_SUBJECT = re.compile(r"^loop:(?P<loop>[^:]+):(?P<strategy>[^:]+):gen(?P<gen>\d+):(?P<what>mix|output)$")


def parse_gate(gate: str) -> tuple[str, float | None]:
    """("none" | "stop" | "switch" | "cap", share) from a loop's `gate` setting."""
    if gate in ("none", "stop"):
        return gate, None
    if gate == "switch:accumulate":
        return "switch", None
    if gate.startswith("cap:"):
        try:
            share = float(gate[4:])
        except ValueError:
            share = -1.0
        if 0.0 <= share < 1.0:
            return "cap", share
    raise ConfigError(f"gate {gate!r} must be one of {', '.join(GATES)} (a share from 0 to 1, e.g. cap:0.3)")


def loop_subject(loop: str, strategy: str, generation: int, what: str) -> str:
    return f"loop:{loop}:{strategy}:gen{generation}:{what}"


def _mix_rows(store: Any, mix_id: str) -> list[tuple[str, str, int, str, int]]:
    rows = store.execute("""
        SELECT s.content_hash, s.text, m.repeats, s.kind, s.synth_depth
        FROM mix_members m JOIN samples s USING (sample_id)
        WHERE m.mix_id = ? AND m.split = 'train' ORDER BY s.sample_id""", [mix_id]).fetchall()
    if not rows:
        raise NotFoundError(f"mix {mix_id} has no training members; build it with `mixline mix build`")
    return rows


def check_mix(store: Any, mix_id: str, reference_where: str, config: DriftConfig | None = None, *,
              model_id: str | None = None, subject: str | None = None, record: bool = True) -> dict[str, Any]:
    """`mixline drift check-mix`: the mix about to be trained against human reference text.

    Reports the synthetic share and depth histogram (by repeats), the share written by the
    model's own family when `model_id` is the model about to be trained, and every metric
    with its threshold. With `record`, the checks go to `drift` and, on an alert, every
    training member gets a `flagged` decision from `drift_gate_v1` naming what moved.
    """
    from mixline.curation.embed import Embedder, cached_embeddings
    from mixline.store.select import validate_where

    cfg = config or DriftConfig()
    rows = _mix_rows(store, mix_id)
    weights = np.array([r[2] for r in rows], dtype=np.float64)
    total = float(weights.sum())
    synthetic = float(sum(w for w, r in zip(weights, rows, strict=True) if r[3] == "synthetic" or r[4] > 0))
    depths: dict[int, float] = {}
    for w, r in zip(weights, rows, strict=True):
        depths[int(r[4])] = depths.get(int(r[4]), 0.0) + float(w)
    # Members weighted by repeats: a member trained on twice counts twice.
    rng = np.random.default_rng(cfg.seed)
    if total <= 4 * cfg.max_samples:
        pick = np.repeat(np.arange(len(rows)), weights.astype(np.int64))
    else:
        pick = rng.choice(len(rows), size=cfg.max_samples, replace=True, p=weights / total)
    batch = [rows[i][1] for i in pick]
    rw = validate_where(store, reference_where)
    # The reference never holds the mix's own members: a mix that contains the reference texts
    # would look closer to them (and richer in their rare words) than new human text does.
    ref = store.execute(f"""SELECT content_hash, text FROM samples WHERE {rw} AND sample_id NOT IN
                            (SELECT sample_id FROM mix_members WHERE mix_id = ?) ORDER BY sample_id""", [mix_id]).fetchall()
    overlap = int(store.scalar(f"""SELECT count(*) FROM samples WHERE {rw} AND sample_id IN
                                   (SELECT sample_id FROM mix_members WHERE mix_id = ?)""", [mix_id]))
    if len(ref) < 60:
        raise ConfigError(f"--reference selects {len(ref)} samples outside mix {mix_id} ({overlap} more are in the mix); "
                          "the gate needs human text the mix does not hold, at least 60 samples (a held-out split works)")
    be = re_ = None
    if cfg.embeddings:
        emb = Embedder()
        uniq = cached_embeddings(store, emb, [r[0] for r in rows], [r[1] for r in rows])
        be = uniq[pick]
        re_ = cached_embeddings(store, emb, [h for h, _ in ref], [t for _, t in ref])
    family = self_consumption(store, mix_id, model_id, record=False) if model_id else None
    report = DriftChecker(cfg).check(batch, [t for _, t in ref], be, re_)
    # The gate alerts on moves toward collapse of a practical size; every other move beyond
    # human-vs-human noise is reported beside it ("beyond_noise") but does not stop a loop.
    beyond = [m.metric for m in report.metrics if m.alert]
    for m in report.metrics:
        m.alert = trips_gate(m, cfg)
    report.alert = any(m.alert for m in report.metrics)
    if overlap:
        report.notes.append(f"{overlap} reference samples are members of the mix and were left out of the reference")
    out: dict[str, Any] = {
        "mix_id": mix_id, "gate": "alert" if report.alert else "pass", **report.as_dict(), "beyond_noise": beyond,
        "margins": {"min_effect": cfg.min_effect, "min_tail_loss": cfg.min_tail_loss},
        "synthetic_share": synthetic / total if total else 0.0,
        "depth_histogram": {str(d): round(w / total, 4) for d, w in sorted(depths.items())},
        "family_share": family["family_share"] if family else None,
        "self_consumed_share": family["self_consumed_share"] if family else None,
    }
    if record:
        label = subject or f"mix {mix_id}"
        with store.run("drift", "drift_check_mix_v1", {"mix_id": mix_id, "reference": reference_where, "model_id": model_id,
                                                          **cfg.__dict__}) as run:
            store.append_rows("drift", [{"run_id": run.run_id, "subject": label, "reference": reference_where,
                                         "metric": m.metric, "value": m.value, "reference_value": m.reference_value,
                                         "distance": m.distance, "threshold": m.threshold, "alert": m.alert,
                                         "null_mean": m.null_mean, "null_sd": m.null_sd} for m in report.metrics])
            if report.alert:
                moved = ",".join(m.metric for m in report.metrics if m.alert)
                store.execute("""
                    INSERT INTO decisions (run_id, sample_id, step, verdict, reason, score)
                    SELECT ?, m.sample_id, 'drift_gate_v1', 'flagged', ?, NULL
                    FROM mix_members m WHERE m.mix_id = ? AND m.split = 'train' AND NOT EXISTS (
                        SELECT 1 FROM decisions d WHERE d.sample_id = m.sample_id AND d.step = 'drift_gate_v1'
                        AND d.reason = ?)""", [run.run_id, f"drift_gate:{mix_id}:{moved}", mix_id, f"drift_gate:{mix_id}:{moved}"])
            run.stats.update({"gate": out["gate"], "synthetic_share": round(out["synthetic_share"], 4), "n_batch": report.n_batch})
            out["run_id"] = run.run_id
    return out


# -- trend ------------------------------------------------------------------------------------

def slope_test(distances: np.ndarray, null_sd: float, two_sided: bool) -> tuple[float, float, float]:
    """(slope, z, p) of distances over generations 1..n against noise of sd `null_sd` (the
    spread of two reference samples), or the scatter around the fitted line where that is
    larger: one model's output varies more from the next than two human samples do, and
    that scatter must not read as a trend."""
    n = len(distances)
    g = np.arange(1, n + 1, dtype=np.float64)
    sxx = float(((g - g.mean()) ** 2).sum())
    slope = float(((g - g.mean()) * (distances - distances.mean())).sum() / sxx) if sxx else 0.0
    resid = distances - distances.mean() - slope * (g - g.mean())
    scatter = math.sqrt(float((resid ** 2).sum()) / (n - 2)) if n > 2 else 0.0
    sd = max(null_sd, scatter)
    se = sd / math.sqrt(sxx) if sxx and sd > 0 else math.inf
    z = slope / se if math.isfinite(se) else 0.0
    cdf = NormalDist().cdf
    p = 2 * (1 - cdf(abs(z))) if two_sided else 1 - cdf(z)
    return slope, z, p


def mann_kendall(values: np.ndarray) -> tuple[int, float]:
    """Mann-Kendall's S and its two-sided p-value (normal approximation, no ties correction)."""
    n = len(values)
    s = int(sum(np.sign(values[j] - values[i]) for i in range(n) for j in range(i + 1, n)))
    var = n * (n - 1) * (2 * n + 5) / 18
    if var <= 0:
        return s, 1.0
    z = (s - np.sign(s)) / math.sqrt(var)
    return s, 2 * (1 - NormalDist().cdf(abs(z)))


def trend_of(series: dict[str, list[tuple[Any, ...]]], alpha: float, min_effect: float = 0.1) -> dict[str, Any]:
    """Trend per metric from (generation, signed distance, null sd, value, reference value[, null mean]) rows.

    A metric is flagged when its slope across generations is significant against the noise
    between human samples (or the scatter around the line, if larger), Bonferroni over the
    metrics, and when the move it adds up to over the generations is at least `min_effect`
    of the human level (the reference value, or for distances the human-vs-human mean): a
    loop that adds a little noisier text each generation moves steadily but not far.
    """
    metrics = []
    k = max(1, len(series))
    for metric, rows in sorted(series.items()):
        rows = sorted(rows)
        gens = [r[0] for r in rows]
        d = np.array([r[1] for r in rows], dtype=np.float64)
        sd = float(np.mean([r[2] for r in rows if r[2] is not None and r[2] > 0] or [0.0]))
        two_sided = metric in SIGNED
        slope, z, p = slope_test(d, sd, two_sided) if len(d) >= 3 else (0.0, 0.0, 1.0)
        s, p_mk = mann_kendall(d) if len(d) >= 3 else (0, 1.0)
        if metric in SIGNED:
            scales = [abs(r[4]) for r in rows if r[4]]
        else:
            scales = [abs(r[5]) for r in rows if len(r) > 5 and r[5]]
        scale = float(np.mean(scales)) if scales else 0.0
        total = abs(slope) * (gens[-1] - gens[0]) if gens else 0.0
        effect = total / scale if scale > 0 else math.inf
        flagged = bool(len(d) >= 3 and p < alpha / k and effect >= min_effect)
        last = rows[-1]
        metrics.append({"metric": metric, "generations": gens, "distances": [round(x, 6) for x in d.tolist()],
                        "values": [r[3] for r in rows], "reference_values": [r[4] for r in rows],
                        "slope": slope, "null_sd": sd, "z": z, "p": p, "mann_kendall_s": s, "mann_kendall_p": p_mk,
                        "total_change": total, "relative_change": None if math.isinf(effect) else effect,
                        "flagged": flagged,
                        "direction": direction(metric, last[3], last[4], slope) if flagged else ""})
    return {"flagged": any(m["flagged"] for m in metrics), "alpha": alpha, "min_effect": min_effect,
            "moved": [m["metric"] for m in metrics if m["flagged"]], "metrics": metrics}


def trend(store: Any, loop: str, alpha: float = 0.02) -> dict[str, Any]:
    """`mixline drift trend LOOP`: each metric across generations, per strategy, for mixes and outputs."""
    rows = store.execute("""
        SELECT subject, metric, distance, value, reference_value, null_sd, null_mean, created_at FROM drift
        WHERE subject LIKE ? ORDER BY created_at""", [f"loop:{loop}:%"]).fetchall()
    if not rows:
        known = [r[0] for r in store.execute(
            "SELECT DISTINCT split_part(subject, ':', 2) FROM drift WHERE subject LIKE 'loop:%' ORDER BY 1").fetchall()]
        raise NotFoundError(f"no drift checks recorded for loop {loop!r}; loops with checks: {', '.join(known) or 'none'}")
    groups: dict[tuple[str, str], dict[str, dict[int, tuple[Any, ...]]]] = {}
    for subject, metric, distance, value, ref_value, null_sd, null_mean, _ in rows:
        m = _SUBJECT.match(subject)
        if not m:
            continue
        signed = (value - ref_value) if metric in SIGNED and ref_value is not None else distance
        # The newest check of a generation wins (a resumed loop may have checked twice).
        groups.setdefault((m["strategy"], m["what"]), {}).setdefault(metric, {})[int(m["gen"])] = (
            int(m["gen"]), float(signed), float(null_sd or 0.0), float(value), ref_value, null_mean)
    out = []
    for (strategy, what), series in sorted(groups.items()):
        t = trend_of({k: list(v.values()) for k, v in series.items()}, alpha)
        out.append({"strategy": strategy, "of": what, **t})
    return {"loop": loop, "trends": out}
