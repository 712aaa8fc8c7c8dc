"""The drift gate: check-mix on the mix about to be trained, trends across generations, readable moves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mixline.curation.drift import DriftConfig, direction
from mixline.curation.drift_gate import (
    check_mix,
    mann_kendall,
    parse_gate,
    slope_test,
    trend,
    trend_of,
)
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build
from mixline.store import Store

from mixline.errors import ConfigError
from tests.test_drift import human_replies, pythia

CFG = DriftConfig(embeddings=False, bootstrap=20)


def test_slope_test_catches_a_steady_drift_no_single_step_shows() -> None:
    sd = 1.0
    steady = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # one null spread per generation
    slope, z, p = slope_test(steady, sd, two_sided=False)
    assert slope == pytest.approx(1.0) and z == pytest.approx(np.sqrt(10)) and p < 0.001
    assert all(abs(x) < 3.05 * sd for x in steady[:3]), "a single check (Bonferroni, about 3 sd) misses generations 1-3"
    # Scatter larger than the null spread (one model's output to the next) is not a trend.
    noisy = np.array([1.0, 4.0, 0.5, 5.0, 2.0])
    assert slope_test(noisy, sd, two_sided=False)[2] > 0.05
    flat = np.array([0.3, -0.2, 0.1, -0.4, 0.2])
    assert slope_test(flat, sd, two_sided=True)[2] > 0.2
    assert mann_kendall(steady) == (10, pytest.approx(0.0275, abs=0.001))
    assert mann_kendall(flat)[0] in range(-4, 5)


def test_trend_of_flags_the_moving_metric_only_and_names_its_direction() -> None:
    series = {
        "distinct_2": [(g, -0.02 * g, 0.004, 0.5 - 0.02 * g, 0.5) for g in range(1, 6)],   # falls steadily, 16% in all
        "mean_words": [(g, x, 2.0, 30 + x, 30.0) for g, x in zip(range(1, 6), [0.5, -1.0, 1.2, -0.3, 0.1], strict=True)],
        # Steady and significant, but 2% of the human level over five generations: below the margin.
        "unigram_entropy": [(g, -0.02 * g, 0.004, 8.0 - 0.02 * g, 8.0) for g in range(1, 6)],
    }
    t = trend_of(series, alpha=0.02)
    assert t["flagged"] and t["moved"] == ["distinct_2"]
    by = {m["metric"]: m for m in t["metrics"]}
    assert by["distinct_2"]["direction"].startswith("less diverse than human text")
    assert abs(by["distinct_2"]["relative_change"] - 0.16) < 1e-6
    assert not by["mean_words"]["flagged"]
    assert by["unigram_entropy"]["p"] < 1e-6 and not by["unigram_entropy"]["flagged"]
    assert trend_of(series, alpha=0.02, min_effect=0.005)["moved"] == ["distinct_2", "unigram_entropy"]


def test_directions_are_words_not_ratios() -> None:
    assert direction("compression_ratio", 0.3, 0.4, -0.1) == "more repetitive than human text (compresses better)"
    assert direction("self_bleu", 0.5, 0.2, 0.3) == "texts more alike each other than human texts are"
    assert direction("rare_word_coverage", 0.1, 0.3, -0.2).startswith("loses the tail")
    assert direction("js_distance", 0.2, 0.0, 0.2) == "word distribution further from human text's"


def test_gate_settings() -> None:
    assert parse_gate("none") == ("none", None) and parse_gate("cap:0.3") == ("cap", 0.3)
    assert parse_gate("switch:accumulate") == ("switch", None)
    for bad in ("cap:1.5", "cap:x", "halt"):
        with pytest.raises(ConfigError, match="must be one of"):
            parse_gate(bad)


def _store_with(realdata, tmp_path) -> tuple[Store, str, str]:
    """Human OASST replies (half as reference), and pythia outputs, in one store; two mixes."""
    human = human_replies(realdata)
    gen = pythia(realdata, "k50")
    st = Store(tmp_path / "s.duckdb")
    for name, texts, kind in (("human", human, "conversation"), ("pythia", gen, "synthetic")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        ingest(st, path, IngestOptions(kind=kind, source=name))
    # The reference is a fixed half of the human replies; the human mix draws from the other half.
    other = "source = 'human' AND hash(sample_id) % 2 = 1"
    mk = lambda name, where: build(st, MixRecipe.parse({"name": name, "status": ["kept", "uncurated"],  # noqa: E731
                                                          "groups": [{"name": "all", "where": where}]})).mix_id
    return st, mk("human-mix", other), mk("synthetic-mix", "source = 'pythia'")


@pytest.mark.realdata
def test_check_mix_alerts_on_a_synthetic_mix_not_on_a_human_one(realdata, tmp_path) -> None:
    st, human_mix, synthetic_mix = _store_with(realdata, tmp_path)
    ref = "source = 'human' AND hash(sample_id) % 2 = 0"
    try:
        ok = check_mix(st, human_mix, ref, CFG)
        bad = check_mix(st, synthetic_mix, ref, CFG)
        assert ok["gate"] == "pass" and ok["synthetic_share"] == 0.0 and ok["depth_histogram"] == {"0": 1.0}
        assert bad["gate"] == "alert" and bad["synthetic_share"] == 1.0 and bad["depth_histogram"] == {"1": 1.0}
        assert bad["moved"] and all(m["direction"] for m in bad["metrics"] if m["alert"])
        # On an alert, every training member of the mix gets a decision naming what moved.
        flagged = st.scalar("SELECT count(*) FROM decisions WHERE step = 'drift_gate_v1' AND verdict = 'flagged'")
        members = st.scalar("SELECT count(*) FROM mix_members WHERE mix_id = ? AND split = 'train'", [synthetic_mix])
        assert flagged == members
        assert st.scalar("SELECT count(*) FROM drift WHERE subject = ?", [f"mix {synthetic_mix}"]) == len(bad["metrics"])
    finally:
        st.close()


def test_trend_reads_a_loops_checks_from_the_store(store) -> None:
    rows = []
    for g in range(1, 6):
        for strategy, step in (("replace", -0.02), ("accumulate", 0.0)):
            value = 0.5 + step * g + (0.001 if g % 2 else -0.001)
            rows.append({"run_id": f"run-{strategy}-{g}", "subject": f"loop:t:{strategy}:gen{g}:mix", "reference": "human",
                         "metric": "distinct_2", "value": value, "reference_value": 0.5, "distance": abs(value - 0.5),
                         "threshold": 0.05, "alert": False, "null_mean": 0.0, "null_sd": 0.01})
    store.append_rows("drift", rows)
    out = {t["strategy"]: t for t in trend(store, "t")["trends"]}
    assert out["replace"]["flagged"] and not out["accumulate"]["flagged"]
    with pytest.raises(Exception, match="no drift checks recorded for loop 'nope'"):
        trend(store, "nope")


@pytest.mark.realdata
def test_loop_gates_the_mix_before_training(store, realdata, tmp_path) -> None:
    from mixline.pipelines.loop import Loop, LoopConfig

    text = (realdata / "prose/tinyshakespeare.txt").read_text()
    paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:400]
    path = tmp_path / "prose.jsonl"
    path.write_text("".join(json.dumps({"text": p}) + "\n" for p in paras))
    ingest(store, path, IngestOptions(kind="domain", source="prose", domain="prose"))
    base = dict(name="g", real_where="source = 'prose'", generations=2, samples_per_generation=60, train_steps=10, holdout_fraction=0.3,
                batch_size=4, seq_len=64, eval_docs=10, max_new_tokens=24, tiny={"n_layer": 1, "n_embd": 64})
    rows = Loop(store, LoopConfig(**base, strategies=("replace", "accumulate"), gate="switch:accumulate"), tmp_path / "a").run()
    replace = [r for r in rows if r["strategy"] == "replace"]
    accumulate = [r for r in rows if r["strategy"] == "accumulate"]
    assert replace[0]["mix_alert"] and replace[0]["gate"] == "switched to accumulate"
    assert replace[0]["trained_as"] == "accumulate" and replace[1]["trained_as"] == "accumulate"
    # An accumulating mix is mostly human text: at generation 1 it sits far closer to the reference
    # than the all-synthetic replace mix does (with a model this undertrained it may still move;
    # benchmarks/bench_drift_gate.py measures the gate on properly trained loops).
    gen1 = {r["subject"].split(":")[2]: r["score"] for r in store.rows("""
        SELECT subject, sum(distance / nullif(threshold, 0)) AS score FROM drift
        WHERE subject IN ('loop:g:replace:gen1:mix', 'loop:g:accumulate:gen1:mix') GROUP BY subject""")}
    assert gen1["accumulate"] < gen1["replace"] / 2, gen1
    assert len(accumulate[0]["mix_moved"]) < len(replace[0]["mix_moved"])
    stopped = Loop(store, LoopConfig(**{**base, "name": "s"}, strategies=("replace",), gate="stop"), tmp_path / "b").run()
    assert stopped[-1]["gate"] == "stopped before training" and stopped[-1]["model_id"] is None
    # Each generation's mix check and output check are recorded for `drift trend`.
    t = {(x["strategy"], x["of"]) for x in trend(store, "g")["trends"]}
    assert {("replace", "mix"), ("accumulate", "mix"), ("accumulate", "output")} <= t


def test_the_gate_trips_on_large_moves_toward_collapse_only() -> None:
    from mixline.curation.drift import DriftConfig, MetricResult, collapse_effect, trips_gate

    cfg = DriftConfig()

    def moved(metric: str, value: float, ref: float | None, null_mean: float = 0.0) -> MetricResult:
        return MetricResult(metric, value, ref, abs(value - (ref or 0.0)), 0.01, True, null_mean)

    # Noisier than human text (less compressible, more varied words): beyond noise, not collapse.
    assert not trips_gate(moved("compression_ratio", 0.50, 0.40), cfg)
    assert not trips_gate(moved("distinct_2", 0.80, 0.60), cfg)
    # More repetitive, by 15% of the human level: collapse. By 5%: too small to stop a loop.
    assert trips_gate(moved("compression_ratio", 0.34, 0.40), cfg)
    assert not trips_gate(moved("compression_ratio", 0.38, 0.40), cfg)
    assert trips_gate(moved("self_bleu", 0.30, 0.20), cfg)
    # The tail: losing 30% of the human rare-word coverage is reported; losing 60% trips the gate.
    assert not trips_gate(moved("rare_word_coverage", 0.21, 0.30), cfg)
    assert trips_gate(moved("rare_word_coverage", 0.12, 0.30), cfg)
    # Vocabulary coverage is judged against what one human sample covers of another (1 - null mean).
    assert abs(collapse_effect("ref_vocab_coverage", 0.15, 1.0, 0.7) - 0.5) < 1e-9
    assert trips_gate(moved("ref_vocab_coverage", 0.12, 1.0, 0.7), cfg)
    assert not trips_gate(moved("ref_vocab_coverage", 0.25, 1.0, 0.7), cfg)
    # Distances with no direction never trip it; nor does anything within noise.
    assert not trips_gate(moved("js_distance", 0.9, 0.0), cfg)
    assert not trips_gate(MetricResult("compression_ratio", 0.2, 0.4, 0.2, 0.5, False), cfg)
