"""Generation after generation: generate, curate, mix, train, evaluate, check drift.

Strategies: `replace` trains each generation on the newest synthetic data only;
`accumulate` on the real data plus all synthetic data so far; `capped` on the same pool
with the synthetic share capped. Each generation's model starts from the same initial
weights, as in the model-collapse studies. Every stage is its own run and its output is
kept in `loop_state`, so a killed loop resumes from the last completed stage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixline.pipelines import models as M
from mixline.store.recipes import read_table_file
from mixline.store.store import Store

from mixline.errors import ConfigError, LineageError

STRATEGIES = ("replace", "accumulate", "capped")
# Diversity of each generation's output, next to the same measure on the human reference.
DIVERSITY = ("distinct_2", "unigram_entropy", "self_bleu")


@dataclass(frozen=True)
class LoopConfig:
    name: str
    real_where: str
    generations: int = 3
    strategies: tuple[str, ...] = ("replace", "accumulate")
    capped_share: float = 0.5
    holdout_fraction: float = 0.1
    samples_per_generation: int = 200
    temperature: float = 1.0
    train_steps: int = 150
    batch_size: int = 16
    seq_len: int = 128
    max_new_tokens: int = 64
    eval_docs: int = 100
    drift: bool = True
    gate: str = "none"
    seed: int = 0
    tiny: dict[str, Any] = field(default_factory=dict)
    # A privacy audit of every trained model: `mixline model audit` settings, e.g.
    # { max_exposure = 8.0, max_extraction = 0.01, candidates = 2000 }. With gate = "stop", a
    # model past the limits stops its strategy before it generates the next round.
    audit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> LoopConfig:
        p = Path(path)
        data = read_table_file(p, "loop config")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"loop config {p}: unknown settings {sorted(unknown)}")
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        cfg = cls(**kw)
        for s in cfg.strategies:
            if s not in STRATEGIES:
                raise ConfigError(f"loop config {p}: strategy {s!r} is not one of {', '.join(STRATEGIES)}")
        from mixline.curation.drift_gate import parse_gate

        try:
            parse_gate(cfg.gate)
        except ConfigError as exc:
            raise ConfigError(f"loop config {p}: {exc}") from None
        return cfg


_MODEL_ID = re.compile(r"model-[0-9a-f]+")


def _generated(gens: list[tuple[str, int]]) -> str:
    """The samples that these (model id, seed) pairs generated, as a predicate."""
    # The recipe's `where` is SQL text by design; model ids are checked before they go in it.
    bad = [m for m, _ in gens if not _MODEL_ID.fullmatch(m)]
    if bad:
        raise LineageError(f"loop state holds malformed model ids {bad}; delete the loop's workdir state and re-run")
    pairs = " OR ".join(f"(model_id = '{m}' AND seed = {int(seed)})" for m, seed in gens)
    return f"sample_id IN (SELECT sample_id FROM generations WHERE {pairs})"


class Loop:
    def __init__(self, store: Store, cfg: LoopConfig, workdir: Path) -> None:
        from dataclasses import asdict

        from mixline.store.ids import config_hash

        self.store, self.cfg, self.workdir = store, cfg, workdir
        # Resumption is keyed by the config: an edited config starts a new loop. (No audit
        # leaves the hash as it was before loops could audit.)
        keyed = asdict(cfg)
        if not keyed["audit"]:
            del keyed["audit"]
        self.loop_id = f"{cfg.name}-{config_hash(keyed)[:8]}"
        if cfg.audit:
            from mixline.pipelines.audit import AuditConfig

            unknown = set(cfg.audit) - set(AuditConfig.__dataclass_fields__)
            if unknown:
                raise ConfigError(f"loop {cfg.name}: audit has unknown settings {sorted(unknown)}; "
                                  f"allowed: {sorted(AuditConfig.__dataclass_fields__)}")

    def audit(self, generation: int, strategy: str, model_id: str) -> dict[str, Any] | None:
        """The privacy audit of a model the loop trained (None when the loop does not audit)."""
        if not self.cfg.audit:
            return None
        from mixline.pipelines.audit import AuditConfig, audit

        def run() -> dict[str, Any]:
            a = audit(self.store, model_id, AuditConfig(**self.cfg.audit))
            return {k: a[k] for k in ("audit_id", "run_id", "passed", "failed")}

        return self.stage(generation, strategy, "audit", run)

    def stage(self, generation: int, strategy: str, stage: str, fn: Any) -> dict[str, Any]:
        """Run a stage once; a rerun returns the recorded output instead."""
        row = self.store.execute("SELECT output FROM loop_state WHERE loop_id = ? AND generation = ? AND strategy = ? AND stage = ?",
                                 [self.loop_id, generation, strategy, stage]).fetchone()
        if row:
            return dict(json.loads(row[0]))
        # The stage's writes and its state row commit together: a loop killed in between would
        # otherwise redo a committed stage on resume, and record its evals or flags twice.
        with self.store.transaction():
            out = fn()
            self.store.append_rows("loop_state", [{"loop_id": self.loop_id, "generation": generation, "strategy": strategy,
                                                   "stage": stage, "output": json.dumps(out, default=str),
                                                   "run_id": out.get("run_id", "")}])
        return dict(out)

    def run(self) -> list[dict[str, Any]]:
        from mixline.pipelines.mix import MixRecipe, build

        c = self.cfg
        real = self.stage(0, "real", "mix", lambda: build(self.store, MixRecipe.parse({
            "name": f"{c.name}-real", "seed": c.seed, "status": ["kept", "uncurated"],
            "groups": [{"name": "real", "where": c.real_where}], "holdout": {"fraction": c.holdout_fraction}})).as_dict())
        real_mix = real["mix_id"]
        held = f"sample_id IN (SELECT sample_id FROM mix_members WHERE mix_id = '{real_mix}' AND split = 'heldout')"
        init = self.stage(0, "real", "init", lambda: M.init_tiny(self.store, real_mix, self.workdir / "init", M.TinyConfig(**c.tiny), c.seed))
        train_cfg = M.TrainConfig(steps=c.train_steps, batch_size=c.batch_size, seq_len=c.seq_len, seed=c.seed)
        gen0 = self.stage(0, "real", "train", lambda: M.train(self.store, init["model_id"], real_mix, self.workdir / "gen0", train_cfg, f"{c.name}-gen0"))
        ev0 = self.stage(0, "real", "eval", lambda: M.evaluate(self.store, gen0["model_id"], {"real_heldout": held}, c.eval_docs))
        results = [{"generation": 0, "strategy": "real", "model_id": gen0["model_id"], "mix_id": real_mix,
                    "bits_per_char": ev0["sets"]["real_heldout"]["bits_per_char"],
                    "tail_token_share": ev0["sets"]["real_heldout"].get("tail_token_share"), "drift_alert": None, "moved": []}]
        audit0 = self.audit(0, "real", gen0["model_id"])
        if audit0 is not None:
            results[0]["audit"] = audit0
            if audit0["failed"] and c.gate == "stop":
                results[0]["gate"] = "stopped: the privacy audit failed (" + "; ".join(audit0["failed"]) + ")"
                return results
        from mixline.curation.drift import DriftConfig, check_store
        from mixline.curation.drift_gate import check_mix, loop_subject, parse_gate

        gate, cap = parse_gate(c.gate)
        gate_cfg = DriftConfig(embeddings=False, bootstrap=20, seed=c.seed)
        for strategy in c.strategies:
            prev, current, runs = gen0["model_id"], strategy, []
            for g in range(1, c.generations + 1):
                source = f"loop:{c.name}:{strategy}:gen{g}"
                self.stage(g, strategy, "generate", lambda prev=prev, source=source, g=g: M.generate(self.store, prev, M.GenerateConfig(
                    n=c.samples_per_generation, prompts_where=f"({c.real_where}) AND NOT ({held})", temperature=c.temperature,
                    max_new_tokens=c.max_new_tokens, seed=c.seed * 1000 + g, source=source)))
                # A generation's samples are those its model wrote with its seed (identical text
                # from another strategy is the same sample, so the source name alone would miss
                # it). Both are content-derived, so the mix ids, and all that follows, are the
                # same in every store and after a resume; a run id would differ with the clock.
                runs.append((prev, c.seed * 1000 + g))
                newest = _generated(runs[-1:])
                groups = self._groups(current, runs, held)
                recipe = {"name": f"{c.name}-{strategy}-gen{g}", "seed": c.seed, "status": ["kept", "uncurated"], "groups": groups}
                if current == "capped":
                    recipe["max_synthetic_share"] = cap if cap is not None else c.capped_share
                mixed = self.stage(g, strategy, "mix", lambda recipe=recipe: build(self.store, MixRecipe.parse(recipe)).as_dict())
                # The gate judges the mix about to be trained, against the real training text.
                gate_note, mix_check = None, None
                if c.drift or gate != "none":
                    def judge(mixed: dict[str, Any] = mixed, g: int = g, strategy: str = strategy) -> dict[str, Any]:
                        try:
                            return check_mix(self.store, mixed["mix_id"], c.real_where, gate_cfg, model_id=init["model_id"],
                                             subject=loop_subject(c.name, strategy, g, "mix"))
                        except ConfigError as exc:  # too little real text outside the mix to judge it
                            if gate != "none":
                                raise ConfigError(f"loop {c.name}: the gate cannot judge the {strategy} mix of generation {g}: "
                                                  f"{exc}; raise holdout_fraction or add real text") from None
                            return {"alert": None, "moved": [], "skipped": str(exc)}

                    mix_check = self.stage(g, strategy, "gate", judge)
                    if mix_check["alert"] and gate == "stop":
                        results.append({"generation": g, "strategy": strategy, "trained_as": current, "model_id": None,
                                        "mix_id": mixed["mix_id"], "bits_per_char": None, "mix_alert": True,
                                        "mix_moved": mix_check["moved"], "gate": "stopped before training"})
                        break
                    if mix_check["alert"] and gate in ("switch", "cap") and current not in ("accumulate", "capped"):
                        if gate == "switch":
                            current, gate_note = "accumulate", "switched to accumulate"
                            recipe = {**recipe, "name": f"{recipe['name']}-switched", "groups": self._groups("accumulate", runs, held)}
                        else:
                            current, gate_note = "capped", f"synthetic share capped at {cap}"
                            recipe = {**recipe, "name": f"{recipe['name']}-capped", "max_synthetic_share": cap,
                                      "groups": self._groups("capped", runs, held)}
                        mixed = self.stage(g, strategy, "mix-gated", lambda recipe=recipe: build(self.store, MixRecipe.parse(recipe)).as_dict())
                model = self.stage(g, strategy, "train", lambda mixed=mixed, g=g, strategy=strategy: M.train(
                    self.store, init["model_id"], mixed["mix_id"], self.workdir / f"{strategy}-gen{g}", train_cfg, f"{c.name}-{strategy}-gen{g}"))
                ev = self.stage(g, strategy, "eval", lambda model=model: M.evaluate(self.store, model["model_id"], {"real_heldout": held}, c.eval_docs))
                drift: dict[str, Any] = {"alert": None, "moved": []}
                if c.drift:
                    drift = self.stage(g, strategy, "drift", lambda newest=newest, g=g, strategy=strategy: check_store(
                        self.store, newest, f"({c.real_where}) AND NOT ({held})", gate_cfg,
                        subject=loop_subject(c.name, strategy, g, "output"), reference_label=f"{c.real_where} (training part)"))
                results.append({"generation": g, "strategy": strategy, "trained_as": current, "model_id": model["model_id"],
                                "mix_id": mixed["mix_id"], "bits_per_char": ev["sets"]["real_heldout"]["bits_per_char"],
                                "tail_token_share": ev["sets"]["real_heldout"].get("tail_token_share"),
                                "mix_alert": mix_check["alert"] if mix_check else None,
                                "mix_moved": mix_check["moved"] if mix_check else [], **({"gate": gate_note} if gate_note else {}),
                                "drift_alert": drift.get("alert"), "moved": drift.get("moved", []),
                                "diversity": {m["metric"]: {"value": m["value"], "reference": m["reference_value"]}
                                              for m in drift.get("metrics", []) if m["metric"] in DIVERSITY}})
                audited = self.audit(g, strategy, model["model_id"])
                if audited is not None:
                    results[-1]["audit"] = audited
                    if audited["failed"] and c.gate == "stop":
                        results[-1]["gate"] = "stopped: the privacy audit failed (" + "; ".join(audited["failed"]) + ")"
                        break
                prev = model["model_id"]
        return results

    def _groups(self, strategy: str, runs: list[tuple[str, int]], held: str) -> list[dict[str, Any]]:
        if strategy == "replace":
            return [{"name": "newest", "where": _generated(runs[-1:])}]
        # The real data's held-out split stays out of every training mix.
        return [{"name": "real", "where": f"({self.cfg.real_where}) AND NOT ({held})"},
                {"name": "synthetic", "where": _generated(runs)}]
