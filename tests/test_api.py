"""The five-minute tour, through the Python API only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mixline
import mixline.errors


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_tour_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    answers = [{"answer": f"Condition {i} is treated with drug {i} at 20-40 mg/day (95% CI 1.2-3.4) for "
                          f"{i + 2} weeks; patients improved in {60 + i}% of {100 + i} cases reported in 2000-2012. "
                          f"Contact dr{i}@clinic.example for the full protocol {'and dosing notes ' * (i % 3)}"}
               for i in range(40)]
    chats = [{"messages": [{"role": "user", "content": f"My order {i} is late, what can I do?"},
                           {"role": "assistant", "content": f"Sorry about order {i}! I have refunded the shipping "
                                                            "and the parcel arrives tomorrow."}]} for i in range(20)]
    with mixline.Store.open(tmp_path / "m.duckdb") as st:
        r = mixline.ingest(st, _write(tmp_path / "med.jsonl", answers), kind="domain", domain="medical",
                           text_field="answer", source="med")
        assert (r.ingested, r.quarantined) == (40, 0) and r.to_dict()["source_id"] == r.source_id
        mixline.ingest(st, _write(tmp_path / "chats.jsonl", chats), kind="conversation", source="support")
        c = mixline.curate(st)
        assert c.selected == 60 and c.kept == 60 and c.rewritten == 40  # emails scrubbed, nothing dropped
        m = mixline.build_mix(st, mixline.MixRecipe.parse({"name": "tour", "groups": [
            {"name": "med", "where": "kind = 'domain'"}, {"name": "chat", "where": "kind = 'conversation'"}],
            "holdout": {"fraction": 0.1}}))
        again = mixline.build_mix(st, mixline.MixRecipe.parse({"name": "tour", "groups": [
            {"name": "med", "where": "kind = 'domain'"}, {"name": "chat", "where": "kind = 'conversation'"}],
            "holdout": {"fraction": 0.1}}))
        assert again.mix_id == m.mix_id and not again.created
        e = mixline.export_mix(st, "tour", tmp_path / "export", "jsonl")
        exported = (tmp_path / "export" / e.files["train"][0]).read_text()
        assert e.rows > 0 and "@clinic.example" not in exported and "<EMAIL>" in exported
        raw = st.scalar("SELECT sample_id FROM samples WHERE text LIKE '%dr3@clinic%'")
        t = mixline.trace(st, raw[:10])
        assert t.to_dict()["sample"]["sample_id"] == raw
        model = mixline.init_tiny(st, m.mix_id, tmp_path / "tiny", n_layer=1, n_embd=32, vocab_size=512)
        trained = mixline.train(st, model.model_id, m.mix_id, tmp_path / "g1", steps=4, batch_size=2, seq_len=32)
        gen = mixline.generate(st, trained.model_id, n=24, prompts_where="kind = 'domain'", max_new_tokens=8)
        assert gen.details["generated"] == 24
        hit = mixline.impact(st, raw)
        assert trained.model_id in {x["model_id"] for x in hit.models}
        assert m.mix_id in {x["mix_id"] for x in hit.mixes}
        d = mixline.drift_check(st, "synth_depth = 1", "synth_depth = 0", embeddings=False, bootstrap=5)
        assert d.n_batch == 24 and {x["metric"] for x in d.metrics} and isinstance(d.to_dict()["alert"], bool)
        info = mixline.show_mix(st, "tour")
        assert info.mix_id == m.mix_id and info.members == m.summary["members"] and trained.model_id in {
            x["model_id"] for x in info.to_dict()["models"]}
        assert mixline.verify_export(tmp_path / "export").ok
        w = mixline.why(st, raw)
        assert w.sample_id == raw and any(x["verdict"] == "rewritten" for x in w.decisions)
        held = f"sample_id IN (SELECT sample_id FROM mix_members WHERE mix_id = '{m.mix_id}' AND split = 'heldout')"
        ev0 = mixline.evaluate(st, model.model_id, {"med": held}, max_docs=10)
        ev = mixline.evaluate(st, trained.model_id, {"med": held}, max_docs=10)
        assert ev.sets["med"]["parent_bits_per_char"] == ev0.sets["med"]["bits_per_char"] > ev.sets["med"]["bits_per_char"] > 0
        with pytest.raises(mixline.errors.ConfigError, match="at least 60 samples"):  # the mix holds most human text
            mixline.drift_check_mix(st, "tour", "synth_depth = 0", embeddings=False, bootstrap=5, record=False)
        sc = mixline.self_consumption(st, "tour", trained.model_id, record=False)
        assert sc.self_consumed == 0 and sc.train_samples > 0
