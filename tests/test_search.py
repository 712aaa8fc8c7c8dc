"""Mixture search on real text (web pages, MedQuAD answers, LegalBench) with tiny proxies:
every proxy recorded, a killed search resumes from the proxies it has, the honest verdict when
the fit does not predict, and a chosen mix that says which search chose its weights."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from mixline.curation.recipe import Recipe
from mixline.pipelines import search as S
from mixline.pipelines.mix import MixRecipe
from mixline.store import Store

from mixline import api
from mixline.errors import ConfigError
from tests.conftest import Mixline

TARGET = "source = 'medquad' AND substr(md5(sample_id), 1, 1) IN ('0', '1')"
GENERAL = "source = 'cc' AND substr(md5(sample_id), 1, 1) IN ('0', '1')"
RECIPE = {"name": "hand", "seed": 0, "total_tokens": 60_000, "groups": [
    {"name": "web", "where": "source = 'cc'", "weight": 0.6}, {"name": "medical", "where": "source = 'medquad'", "weight": 0.2},
    {"name": "legal", "where": "source = 'legal'", "weight": 0.2}]}


class Killed(Exception):
    pass


def config(**kw: Any) -> S.SearchConfig:
    base = {"target": TARGET, "general": GENERAL, "proxies": 6, "proxy_tokens": 20_480, "eval_docs": 20,
            "tiny": {"n_layer": 1, "n_embd": 32}}
    return S.SearchConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def store_path(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search")
    rows = [json.loads(line) for _, line in zip(range(400), gzip.open(realdata / "domain_medical/medquad_qa.jsonl.gz", "rt"),
                                                 strict=False)]
    (root / "med.jsonl").write_text("".join(json.dumps({"text": r["answer"]}) + "\n" for r in rows))
    path = root / "s.duckdb"
    with Store(path) as st:
        api.ingest(st, [str(realdata / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")], kind="web", source="cc")
        api.ingest(st, [str(root / "med.jsonl")], kind="domain", domain="medical", source="medquad")
        api.ingest(st, [str(realdata / "domain_legal/legalbench_train_permissive.jsonl")], kind="domain", domain="legal",
                   source="legal")
        api.curate(st, Recipe.parse({"name": "light", "steps": [{"type": "length", "min_chars": 50}, {"type": "exact_dedup"}]}, "t"))
    return path


def test_a_killed_search_resumes_and_the_choice_is_recorded(store_path: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    killed: list[bool] = []
    real = S._proxy_local

    def flaky(*args: Any, **kw: Any) -> dict[str, Any]:
        calls.append(args[3])
        if len(calls) == 3 and not killed:
            killed.append(True)
            raise Killed("the search is killed while training its third proxy")
        return real(*args, **kw)

    monkeypatch.setattr(S, "_proxy_local", flaky)
    with Store(store_path) as st, pytest.raises(Killed):
        S.search(st, MixRecipe.parse(RECIPE), config(), tmp_path)
    with Store(store_path, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM search_proxies") == 2  # each proxy was recorded as it finished
    calls.clear()
    monkeypatch.setattr(S, "MIN_SPEARMAN", -1.0)  # whatever the fit, go on to the choice
    with Store(store_path) as st:
        out = S.search(st, MixRecipe.parse(RECIPE), config(), tmp_path)
    assert calls == [2, 3, 4, 5, 6, 7, 8]  # the 4 proxies left, then the 3 confirmations; none trained twice
    assert out["proxies"] == 6 and out["reliable"] and len(out["chosen_weights"]) == 3
    assert abs(sum(out["chosen_weights"]) - 1) < 1e-6 and set(out["confirmation"]) >= {"confirm-chosen", "confirm-hand", "confirm-natural"}
    f = out["fit"]["target"]
    assert -1 <= f["spearman_loo"] <= 1 and f["r2_in_sample"] <= 1
    cli = Mixline(store_path)
    with Store(store_path, read_only=True) as st:
        recipe = json.loads(st.scalar("SELECT recipe FROM mixes WHERE mix_id = ?", [out["chosen_mix_id"]]))
        proxies = st.rows("SELECT role, mix_id, model_id, target_bpc FROM search_proxies WHERE search_id = ? ORDER BY idx",
                          [out["search_id"]])
        # The eval samples never entered a proxy's mix.
        leaked = st.scalar(f"""SELECT count(*) FROM mix_members mm JOIN samples s USING (sample_id)
                               WHERE mm.split = 'train' AND mm.mix_id IN (SELECT mix_id FROM search_proxies) AND ({TARGET})""")
    assert recipe["search"] == out["search_id"] and recipe["total_tokens"] == RECIPE["total_tokens"]
    assert [p["role"] for p in proxies] == ["proxy"] * 6 + ["confirm-chosen", "confirm-hand", "confirm-natural"]
    assert all(p["target_bpc"] > 0 for p in proxies) and leaked == 0
    shown = cli("mix", "show", out["chosen_mix_id"]).output
    assert f"weights from mixture search {out['search_id']}" in shown and "Spearman" in shown
    assert S.show(Store(store_path, read_only=True), out["search_id"])["result"]["chosen_mix_id"] == out["chosen_mix_id"]


def test_an_unpredictive_fit_claims_no_optimum(store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "MIN_SPEARMAN", 1.01)  # no fit can reach it
    with Store(store_path) as st:
        out = S.search(st, MixRecipe.parse({**RECIPE, "name": "hand-2"}), config(seed=3), tmp_path)
        status = st.scalar("SELECT status FROM mix_searches WHERE search_id = ?", [out["search_id"]])
    assert not out["reliable"] and "no optimum is claimed" in out["verdict"] and "chosen_weights" not in out
    assert status == "unreliable"


def test_search_settings_are_checked(store_path: Path, tmp_path: Path) -> None:
    with Store(store_path) as st:
        with pytest.raises(ConfigError, match="give every group a weight"):
            S.search(st, MixRecipe.parse({"name": "x", "groups": [{"name": "a", "where": "TRUE"}, {"name": "b"}]}), config(), tmp_path)
        with pytest.raises(ConfigError, match="at least 6 proxies"):
            S.search(st, MixRecipe.parse(RECIPE), config(proxies=2), tmp_path)


def test_the_dashboard_shows_each_search(store_path: Path) -> None:
    from mixline.dashboards.app import create_app
    from starlette.testclient import TestClient

    client = TestClient(create_app(store_path), base_url="http://127.0.0.1")
    listed = client.get("/api/mixes").json()["searches"]
    assert len(listed) >= 2 and {s["status"] for s in listed} == {"done", "unreliable"}
    chosen = next(s for s in listed if s["chosen_mix_id"])
    page = client.get(f"/searches/{chosen['search_id']}")
    assert page.status_code == 200 and 'id="proxies"' in page.text and chosen["chosen_mix_id"] in page.text
    spec = client.get(f"/api/searches/{chosen['search_id']}").json()["search"]
    assert [p["role"] for p in spec["proxies"]].count("proxy") == 6
    assert chosen["search_id"] in client.get("/mixes").text
    assert client.get("/api/searches/search-nope").status_code == 404


def test_ray_trains_the_proxies_as_tasks_with_the_same_results(store_path: Path, tmp_path: Path) -> None:
    import os
    import shutil

    ray = pytest.importorskip("ray", reason="Ray tests need `pip install mixline[ray]`")
    copies = {k: tmp_path / f"{k}.duckdb" for k in ("local", "ray")}
    for p in copies.values():
        shutil.copy(store_path, p)
    recipe = MixRecipe.parse({**RECIPE, "name": "hand-ray"})
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        outs = {}
        for k, p in copies.items():
            with Store(p) as st:
                outs[k] = S.search(st, recipe, config(seed=5, executor=k), tmp_path / k)
                outs[k]["rows"] = st.rows("""SELECT p.idx, p.mix_id, p.model_id, p.target_bpc, m.checkpoint_uri IS NOT NULL AS saved,
                                                    (SELECT count(*) FROM evals e WHERE e.model_id = p.model_id) AS evals
                                             FROM search_proxies p JOIN models m USING (model_id)
                                             WHERE p.search_id = ? AND p.role = 'proxy' ORDER BY p.idx""", [outs[k]["search_id"]])
        from mixline.store.doctor import doctor

        with Store(copies["ray"], read_only=True) as st:
            problems = {k: n for k, n in doctor(st).checks.items() if n}
    finally:
        ray.shutdown()
    local, remote = outs["local"], outs["ray"]
    assert local["search_id"] == remote["search_id"] and len(remote["rows"]) == 6
    for a, b in zip(local["rows"], remote["rows"], strict=True):
        assert (a["idx"], a["mix_id"], a["model_id"]) == (b["idx"], b["mix_id"], b["model_id"])
        assert abs(a["target_bpc"] - b["target_bpc"]) < 1e-3 * a["target_bpc"] and b["saved"] and b["evals"] >= 2
    assert problems == {}  # the proxies' models, evals and runs joined the store whole


def test_draws_that_break_the_recipes_limits_are_replaced(store_path: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "MIN_SPEARMAN", 1.01)  # only the proxies matter here
    capped = {**RECIPE, "name": "capped", "max_tokens_per_source": 9000}
    with Store(store_path) as st:
        out = S.search(st, MixRecipe.parse(capped), config(seed=11), tmp_path)
        weights = [json.loads(w) for (w,) in st.execute("SELECT weights FROM search_proxies WHERE search_id = ? AND role = 'proxy'",
                                                        [out["search_id"]]).fetchall()]
    assert len(weights) == 6
    # No group may take more than 9,000 of a proxy's 20,480 tokens from one source.
    assert all(max(w) * 20_480 <= 9000 * 1.01 for w in weights), weights
