"""Models: a tiny local GPT-2 for tests and the demo, fine-tuning on a mix, evaluation,
and generation of synthetic samples with their lineage.

One linear module in the spirit of nanoGPT: read it top to bottom. Every checkpoint
describes itself in `mixline.json` (config, mix id, base model), and every model is a
row in `models` with its parent, mix, hyperparameters and loss curve.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from mixline.store.ids import canonical_json, content_id, step_id
from mixline.store.refs import resolve_ref
from mixline.store.store import Store

from mixline.errors import ConfigError, NotFoundError


def _quiet() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def device() -> str:
    import torch

    _quiet()

    return "cuda" if torch.cuda.is_available() else "cpu"


def mix_texts(store: Store, mix_id: str, split: str = "train") -> list[str]:
    rows = store.execute("""SELECT s.text FROM mix_members m JOIN samples s USING (sample_id), range(m.repeats) r(i)
                            WHERE m.mix_id = ? AND m.split = ? ORDER BY s.sample_id, r.i""", [mix_id, split]).fetchall()
    if not rows and split == "train":
        raise NotFoundError(f"mix {mix_id} has no training samples; build it with `mixline mix build`")
    return [t for (t,) in rows]


@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 2048
    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_positions: int = 128


STAGES = ("pretraining", "continued-pretraining", "sft", "preference", "adapter", "merge", "compose")


def weight_hash(path: str | Path) -> str | None:
    """A content hash of a checkpoint's weight files (safetensors or bin), or None for a hub name."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    files = sorted(f for f in folder.iterdir() if f.suffix in (".safetensors", ".bin") and f.is_file())
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()[:32]


def _record_model(store: Store, model_id: str, name: str, base_ref: str, parent: str | None, method: str,
                  mix_id: str | None, run_id: str, path: Path, config: dict[str, Any], stage: str | None = None) -> None:
    if store.scalar("SELECT count(*) FROM models WHERE model_id = ?", [model_id]):
        return
    store.append_rows("models", [{"model_id": model_id, "name": name, "base_ref": base_ref, "parent_model_id": parent,
                                  "method": method, "mix_id": mix_id, "train_run_id": run_id,
                                  "checkpoint_uri": str(path.resolve()), "config": canonical_json(config),
                                  "stage": stage, "weight_hash": weight_hash(path)}])


def _describe(path: Path, info: dict[str, Any]) -> None:
    (path / "mixline.json").write_text(json.dumps(info, indent=1, default=str))


def init_tiny(store: Store, mix_id: str, out: Path, cfg: TinyConfig | None = None, seed: int = 0) -> dict[str, Any]:
    """Train a byte-level BPE tokenizer on a mix and save an untrained small GPT-2 beside it."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    _quiet()
    cfg = cfg or TinyConfig()
    texts = mix_texts(store, mix_id)
    config = {"kind": "tiny-gpt2", "mix_id": mix_id, "seed": seed, **asdict(cfg)}
    model_id = "model-" + step_id("init_tiny", 1, config, [mix_id])[:20]
    with store.run("model", "init_tiny_v1", config) as run:
        out.mkdir(parents=True, exist_ok=True)
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(texts, vocab_size=cfg.vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"])
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                      unk_token="<|endoftext|>", pad_token="<|endoftext|>")
        tok.save_pretrained(out)
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head,
                                           n_positions=cfg.n_positions, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
        model.save_pretrained(out)
        params = sum(p.numel() for p in model.parameters())
        _describe(out, {"model_id": model_id, "base": "scratch", "mix_id": mix_id, "config": config, "parameters": params})
        _record_model(store, model_id, "tiny-init", "scratch", None, "init", mix_id, run.run_id, out, {**config, "parameters": params},
                      stage="init")
        run.stats.update({"model_id": model_id, "parameters": params})
    return {"model_id": model_id, "path": str(out), "parameters": params}


def resolve_model(store: Store, ref: str) -> tuple[str | None, str]:
    """(model id or None, loadable path or hub name) for a model id, a local folder or a hub name."""
    model_id = resolve_ref(store, "model", ref)
    if model_id is not None:
        return model_id, str(store.scalar("SELECT checkpoint_uri FROM models WHERE model_id = ?", [model_id]))
    if Path(ref).is_dir():
        return None, ref
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise NotFoundError(f"model {ref!r} is not in the store, not a folder, and the hub is offline")
    return None, ref


def load_model(store: Store, ref: str, base: str | None = None) -> tuple[Any, Any, str | None]:
    """(model, tokenizer, model id) for a model id, folder or hub name, on the device.

    An adapter (a peft folder) is loaded onto its base model, which must have the weights it
    was trained on: `base` names another base to try, and a base whose weight hash differs
    from the one the adapter recorded is refused.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet()
    model_id, path = resolve_model(store, ref)
    if Path(path, "adapter_config.json").is_file():
        from peft import PeftModel

        cfg = json.loads(store.scalar("SELECT config FROM models WHERE model_id = ?", [model_id]) or "{}") if model_id else {}
        base_ref = base or cfg.get("base_model_id")
        if not base_ref:
            raise ConfigError(f"adapter {ref!r} does not say which base model it was trained on; pass a base model")
        base_id, base_path = resolve_model(store, base_ref)
        recorded, actual = cfg.get("base_weight_hash"), _hash_of(store, base_id, base_path)
        if recorded and actual != recorded:
            raise ConfigError(f"adapter {model_id or ref} was trained on base {cfg.get('base_model_id')} (weights {recorded}); "
                              f"{base_ref} has weights {actual}. An adapter only fits the base it was trained on: "
                              "load it onto that base, or train a new adapter on this one")
        base_model, tok, _ = load_model(store, base_ref)
        return PeftModel.from_pretrained(base_model, path).to(device()), tok, model_id
    tok = AutoTokenizer.from_pretrained(path)
    return AutoModelForCausalLM.from_pretrained(path).to(device()), tok, model_id  # type: ignore[arg-type]


def _hash_of(store: Store, model_id: str | None, path: str) -> str | None:
    if model_id:
        h = store.scalar("SELECT weight_hash FROM models WHERE model_id = ?", [model_id])
        if h:
            return str(h)
    return weight_hash(path)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    seed: int = 0
    method: str = "full"
    lora_r: int = 8
    lora_alpha: int | None = None  # 2 * r when not given
    target_modules: tuple[str, ...] = ("c_attn",)
    # The training stage this run is: pretraining, continued-pretraining, sft, preference or
    # adapter. None: pretraining from an untrained model, adapter for LoRA, else continued-pretraining.
    stage: str | None = None
    # LoRA only: also write the adapter merged into its base, as a child model.
    merge: bool = False


def _blocks(tok: Any, texts: list[str], seq_len: int) -> Any:
    import torch

    ids: list[int] = []
    for t in texts:
        ids.extend(tok(t, add_special_tokens=False)["input_ids"])
        ids.append(tok.eos_token_id)
    n = len(ids) // seq_len
    if n == 0:
        raise ConfigError(f"the training text has {len(ids)} tokens, fewer than one block of {seq_len}")
    return torch.tensor(ids[: n * seq_len]).view(n, seq_len)


def chat_segments(tok: Any, messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """(text, trained) pieces of a conversation: the tokenizer's chat template when it has one
    (the loss then falls on each assistant reply, found by rendering the turns before it), or a
    plain "User:/Assistant:" template for the tiny model. Only assistant turns are trained."""
    if getattr(tok, "chat_template", None):
        pieces, done = [], ""
        for i, m in enumerate(messages):
            full = tok.apply_chat_template(messages[: i + 1], tokenize=False)
            pieces.append((full[len(done):], m.get("role") == "assistant"))
            done = full
        return pieces
    out = []
    for m in messages:
        role = str(m.get("role", "user"))
        label = "Assistant" if role == "assistant" else ("System" if role == "system" else "User")
        out.append((f"{label}: ", False))
        out.append((str(m.get("content", "")) + "\n\n", role == "assistant"))
    return out


def _sft_examples(tok: Any, conversations: list[list[dict[str, Any]]], seq_len: int) -> tuple[Any, Any]:
    """Token ids and labels (-100 outside assistant turns), padded or cut to seq_len."""
    import torch

    ids_rows, label_rows = [], []
    for msgs in conversations:
        ids: list[int] = []
        labels: list[int] = []
        for text, trained in chat_segments(tok, msgs):
            piece = tok(text, add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if trained else [-100] * len(piece)
        ids, labels = ids[:seq_len], labels[:seq_len]
        if not any(x != -100 for x in labels):
            continue
        pad = seq_len - len(ids)
        ids_rows.append(ids + [tok.eos_token_id] * pad)
        label_rows.append(labels + [-100] * pad)
    if not ids_rows:
        raise ConfigError(f"no conversation has an assistant turn within the first {seq_len} tokens; SFT has nothing to train on")
    return torch.tensor(ids_rows), torch.tensor(label_rows)


def train(store: Store, base_ref: str, mix_id: str, out: Path, cfg: TrainConfig | None = None, name: str | None = None) -> dict[str, Any]:
    """Fine-tune (full or LoRA) a causal LM on a mix; the checkpoint and a models row record it."""
    import torch

    cfg = cfg or TrainConfig()
    if cfg.method not in ("full", "lora"):
        raise ConfigError(f"--method {cfg.method!r} must be full or lora")
    if cfg.stage is not None and cfg.stage not in ("pretraining", "continued-pretraining", "sft", "preference", "adapter"):
        raise ConfigError(f"--stage {cfg.stage!r} must be one of pretraining, continued-pretraining, sft, preference, adapter")
    if cfg.stage == "preference":
        raise ConfigError("mixline does not train preference (DPO) stages; train with your own trainer, then record the "
                          "model with `mixline model register PATH --parent MODEL --mix MIX --stage preference`")
    if cfg.merge and cfg.method != "lora":
        raise ConfigError("--merge only applies to --method lora")
    parent_id, path = resolve_model(store, base_ref)
    parent_method = store.scalar("SELECT method FROM models WHERE model_id = ?", [parent_id]) if parent_id else None
    stage = cfg.stage or ("adapter" if cfg.method == "lora" else "pretraining" if parent_method == "init" else "continued-pretraining")
    cfg = TrainConfig(**{**asdict(cfg), "stage": stage})
    texts = mix_texts(store, mix_id)
    from mixline.curation.drift import self_consumption

    # Before training: which samples did this model, its ancestors or its family write?
    # Each is flagged with a decision; the counts go with the result.
    eaten = self_consumption(store, mix_id, parent_id)
    config = {"base": parent_id or path, "mix_id": mix_id, **asdict(cfg)}
    model_id = "model-" + step_id("train", 1, config, [mix_id, parent_id or path])[:20]
    with store.run("model", "train_v1", config) as run:
        torch.manual_seed(cfg.seed)
        dev = device()
        model, tok, _ = load_model(store, base_ref)
        if hasattr(model, "merge_and_unload"):  # training on top of an adapter: start from base + adapter
            model = model.merge_and_unload()
        base_hash = _hash_of(store, parent_id, path)
        if cfg.method == "lora":
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
                                                     target_modules=list(cfg.target_modules), task_type="CAUSAL_LM"))
        if stage == "sft":
            convs = [json.loads(m) for (m,) in store.execute(
                """SELECT s.messages FROM mix_members mm JOIN samples s USING (sample_id), range(mm.repeats) r(i)
                   WHERE mm.mix_id = ? AND mm.split = 'train' AND s.messages IS NOT NULL ORDER BY s.sample_id, r.i""",
                [mix_id]).fetchall()]
            if not convs:
                raise ConfigError(f"--stage sft trains on conversations, and mix {mix_id} holds none (samples with messages)")
            data, labels = _sft_examples(tok, convs, cfg.seq_len)
        else:
            data = _blocks(tok, texts, cfg.seq_len)
            labels = data
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(cfg.seed)
        losses: list[float] = []
        model.train()
        t0 = time.perf_counter()
        for step in range(cfg.steps):
            # Cosine decay after a short warm-up: small models on small data are sensitive to the lr.
            lr = cfg.lr * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
            batch = data[idx].to(dev)
            loss = model(input_ids=batch, labels=labels[idx].to(dev)).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(round(float(loss.detach()), 4))
        seconds = time.perf_counter() - t0
        out.mkdir(parents=True, exist_ok=True)
        # A LoRA run stays an adapter (a peft folder) tied to its base's weights.
        model.save_pretrained(out)
        tok.save_pretrained(out)
        tokens = cfg.steps * cfg.batch_size * cfg.seq_len
        info = {**config, "stage": stage, "loss_curve": losses, "train_seconds": round(seconds, 2),
                "tokens_per_second": round(tokens / seconds, 1), "device": dev}
        if cfg.method == "lora":
            info.update({"base_model_id": parent_id, "base_ref": parent_id or path, "base_weight_hash": base_hash,
                         "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha or 2 * cfg.lora_r, "target_modules": list(cfg.target_modules)}})
        _describe(out, {"model_id": model_id, "parent_model_id": parent_id, **info})
        _record_model(store, model_id, name or f"trained-{mix_id[:12]}", parent_id or path, parent_id, cfg.method, mix_id,
                      run.run_id, out, info, stage=stage)
        result = {"model_id": model_id, "path": str(out), "stage": stage, "final_loss": losses[-1],
                  "tokens_per_second": info["tokens_per_second"]}
        if cfg.merge:
            merged_dir = out.parent / f"{out.name}-merged"
            merged = model.merge_and_unload()
            merged.save_pretrained(merged_dir)
            tok.save_pretrained(merged_dir)
            merged_id = "model-" + step_id("merge", 1, {"adapter": model_id}, [model_id])[:20]
            _describe(merged_dir, {"model_id": merged_id, "parent_model_id": model_id, "merged_from": model_id})
            _record_model(store, merged_id, f"{name or 'trained'}-merged", model_id, model_id, "merge", mix_id, run.run_id,
                          merged_dir, {"merged_from": model_id, "base_model_id": parent_id}, stage="merge")
            result["merged_model_id"] = merged_id
        run.stats.update({"model_id": model_id, "final_loss": losses[-1], "tokens_per_second": info["tokens_per_second"]})
    return {**result, "self_consumption": {k: eaten[k] for k in ("self_consumed", "family", "self_consumed_share", "family_share",
                                                                  "train_samples")}}


def doc_scores(model: Any, tok: Any, texts: list[str]) -> Any:
    """Per document: (negative log-likelihood in nats, characters, tokens in the low-probability
    tail, tokens scored), as an array of shape (len(texts), 4). The tail is the tokens the model
    finds less likely than a uniform guess (p < 1/vocabulary): collapse forgets the rare first."""
    import numpy as np
    import torch

    dev = next(model.parameters()).device
    n_pos = model.config.n_positions
    floor = -math.log(model.config.vocab_size)
    out = np.zeros((len(texts), 4))
    with torch.no_grad():
        for i, text in enumerate(texts):
            ids = [tok.eos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
            for s in range(0, len(ids) - 1, n_pos - 1):
                chunk = torch.tensor([ids[s : s + n_pos]], device=dev)
                if chunk.shape[1] < 2:
                    break
                res = model(input_ids=chunk, labels=chunk)
                logp = torch.log_softmax(res.logits[0, :-1].float(), -1).gather(1, chunk[0, 1:, None])[:, 0]
                out[i] += (float(res.loss) * (chunk.shape[1] - 1), 0, int((logp < floor).sum()), int(logp.numel()))
            out[i, 1] = len(text)
    return out


def evaluate(store: Store, model_ref: str, sets: dict[str, str], max_docs: int = 200) -> dict[str, Any]:
    """Bits per character of a model on held-out sets (name -> --where predicate).

    A held-out sample that is in the model's training mix is an error: it would flatter
    the model.
    """
    from mixline.store.select import validate_where

    model_id, path = resolve_model(store, model_ref)
    if model_id is None:
        raise NotFoundError(f"model {model_ref!r} is not in the store; evaluate models that mixline trained or registered")
    mix_id = store.scalar("SELECT mix_id FROM models WHERE model_id = ?", [model_id])
    model, tok, _ = load_model(store, model_id)
    model.eval()
    results: dict[str, Any] = {}
    with store.run("eval", "evaluate_v1", {"model_id": model_id, "sets": sets, "max_docs": max_docs}) as run:
        for name, where in sets.items():
            pred = validate_where(store, where)
            rows = store.execute(f"SELECT sample_id, text FROM samples WHERE {pred} ORDER BY sample_id LIMIT {int(max_docs)}").fetchall()
            if not rows:
                raise ConfigError(f"eval set {name!r} ({where}) selects no samples")
            leaked = store.scalar(
                f"SELECT count(*) FROM mix_members WHERE mix_id = ? AND split = 'train' AND sample_id IN ({','.join('?' * len(rows))})",
                [mix_id, *[r[0] for r in rows]])
            if leaked:
                raise ConfigError(f"eval set {name!r}: {leaked} held-out samples are in model {model_id}'s training mix {mix_id}")
            scores = doc_scores(model, tok, [t for _, t in rows])
            nll, chars, tail, tokens = (float(x) for x in scores.sum(0))
            bpc = nll / chars / math.log(2)
            tail_share = tail / tokens if tokens else 0.0
            results[name] = {"bits_per_char": bpc, "tail_token_share": tail_share, "docs": len(rows), "chars": int(chars)}
            store.append_rows("evals", [{"model_id": model_id, "eval_set": name, "metric": metric, "value": value,
                                         "run_id": run.run_id, "n_docs": len(rows), "n_chars": int(chars)}
                                        for metric, value in (("bits_per_char", bpc), ("tail_token_share", tail_share))])
        parent = store.scalar("SELECT parent_model_id FROM models WHERE model_id = ?", [model_id])
        if parent:
            prev = {r["eval_set"]: r["value"] for r in store.rows(
                "SELECT eval_set, arg_max(value, run_id) AS value FROM evals WHERE model_id = ? AND metric = 'bits_per_char' GROUP BY 1", [parent])}
            for name in results:
                if name in prev:
                    results[name]["parent_bits_per_char"] = prev[name]
                    results[name]["change"] = results[name]["bits_per_char"] - prev[name]
    return {"model_id": model_id, "sets": results}


@dataclass(frozen=True)
class GenerateConfig:
    n: int = 50
    prompts_where: str = "kind <> 'eval' AND synth_depth = 0"
    prompt_chars: int = 48
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0
    source: str | None = None


def generate(store: Store, model_ref: str, cfg: GenerateConfig | None = None) -> dict[str, Any]:
    """A model writes synthetic samples from prompts drawn from samples, each with its lineage.

    Prompts are document prefixes, or the first user turn of a conversation. A sample's
    synthetic depth is one more than the deepest sample in the model's training mix.
    """
    import torch
    from mixline.store.select import not_raw_parent, scope

    cfg = cfg or GenerateConfig()
    model_id, path = resolve_model(store, model_ref)
    if model_id is None:
        raise NotFoundError(f"model {model_ref!r} is not in the store")
    mix_id = store.scalar("SELECT mix_id FROM models WHERE model_id = ?", [model_id])
    depth = int(store.scalar("""SELECT coalesce(max(s.synth_depth), 0) FROM mix_members m JOIN samples s USING (sample_id)
                                WHERE m.mix_id = ? AND m.split = 'train'""", [mix_id]) or 0) + 1
    # Prompts never come from eval samples or from raw text that PII scrubbing replaced.
    pred = scope(store, cfg.prompts_where, "s")
    prompts = store.execute(f"""SELECT sample_id, text, messages FROM samples s
                                WHERE s.kind <> 'eval' AND {not_raw_parent("s")} AND {pred}
                                ORDER BY md5(sample_id || ':{int(cfg.seed)}') LIMIT {int(cfg.n)}""").fetchall()
    if not prompts:
        raise ConfigError(f"no prompt samples match {cfg.prompts_where!r}")
    source = cfg.source or f"gen:{model_id}"
    decoding = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "top_k": cfg.top_k, "do_sample": cfg.temperature > 0}
    with store.run("generate", "generate_v1", {"model_id": model_id, **asdict(cfg)}) as run:
        dev = device()
        model, tok, _ = load_model(store, model_id)
        model.eval()
        torch.manual_seed(cfg.seed)
        texts, parents = [], []
        for sid, text, messages in prompts:
            prompt = json.loads(messages)[0]["content"] if messages else text
            prompt = prompt[: cfg.prompt_chars]
            ids = tok(prompt, return_tensors="pt").input_ids.to(dev)
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.temperature > 0,
                                     temperature=cfg.temperature if cfg.temperature > 0 else None,
                                     top_k=cfg.top_k or None, pad_token_id=tok.eos_token_id)
            gen = str(tok.decode(out[0][ids.shape[1]:], skip_special_tokens=True)).strip()
            texts.append(prompt + gen if gen else prompt)
            parents.append(sid)
        _store_generated(store, run.run_id, model_id, source, depth, texts, parents, decoding, cfg.seed)
        run.stats.update({"generated": len(texts), "synth_depth": depth})
    return {"model_id": model_id, "source": source, "generated": len(texts), "synth_depth": depth, "run_id": run.run_id}


def _store_generated(store: Store, run_id: str, model_id: str, source: str, depth: int, texts: list[str],
                     parents: list[str], decoding: dict[str, Any], seed: int) -> None:
    from mixline.pipelines.ingest import source_id_for

    sid = source_id_for(source)
    if not store.scalar("SELECT count(*) FROM sources WHERE source_id = ?", [sid]):
        store.append_rows("sources", [{"source_id": sid, "name": source, "kind": "synthetic", "uri": f"model:{model_id}",
                                       "license": None, "domain": None, "created_run_id": run_id}])
    ids = [content_id(t) for t in texts]
    table = pa.table({"sample_id": ids, "source_id": [sid] * len(ids), "source": [source] * len(ids),
                      "kind": ["synthetic"] * len(ids), "text": texts, "content_hash": ids,
                      "n_chars": [len(t) for t in texts], "synth_depth": [depth] * len(ids), "created_run_id": [run_id] * len(ids)})
    store.insert_new_samples(table)
    store.add_edges([{"child_id": c, "parent_id": p, "relation": "prompted_by", "run_id": run_id, "step": "generate_v1"}
                     for c, p in zip(ids, parents, strict=True)])
    store.append_rows("generations", [{"sample_id": c, "model_id": model_id, "run_id": run_id, "prompt_sample_id": p,
                                       "template_hash": None, "decoding": canonical_json(decoding), "seed": seed}
                                      for c, p in zip(ids, parents, strict=True)])
