"""`mixline model` and `mixline loop`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit

from mixline.errors import MixlineError


@cli.group()
def model() -> None:
    """Tiny local models, fine-tuning on mixes, evaluation and generation, all with lineage."""


@command(model, "init-tiny")
@click.argument("mix_id")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the tokenizer and weights.")
@click.option("--vocab-size", default=2048, show_default=True)
@click.option("--n-embd", default=128, show_default=True)
@click.option("--n-layer", default=2, show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_init_tiny(ctx: Ctx, as_json: bool, mix_id: str, out: Path, vocab_size: int, n_embd: int, n_layer: int, seed: int) -> None:
    """Train a byte-level BPE tokenizer on a mix and build a small GPT-2 (no download)."""
    from mixline import api

    with ctx.open() as st:
        res = api.init_tiny(st, mix_id, out, seed=seed, vocab_size=vocab_size, n_embd=n_embd, n_layer=n_layer).to_dict()
    if not emit(as_json, res):
        click.echo(f"{res['model_id']}: {res['parameters']:,} parameters in {res['path']}")


@command(model, "train")
@click.argument("base")
@click.argument("mix_id")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--steps", default=200, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--seq-len", default=128, show_default=True)
@click.option("--method", default="full", type=click.Choice(["full", "lora"]), show_default=True)
@click.option("--stage", type=click.Choice(["pretraining", "continued-pretraining", "sft", "preference", "adapter"]), default=None,
              help="The training stage, recorded on the model. sft trains on conversations, with the loss on assistant turns "
                   "only. Default: adapter for LoRA, pretraining from an untrained model, else continued-pretraining.")
@click.option("--lora-r", default=8, show_default=True, help="LoRA rank.")
@click.option("--lora-alpha", default=None, type=int, help="LoRA alpha (default 2 x rank).")
@click.option("--merge", is_flag=True, help="LoRA: also write the adapter merged into its base, as a child model.")
@click.option("--seed", default=0, show_default=True)
def model_train(ctx: Ctx, as_json: bool, base: str, mix_id: str, out: Path, steps: int, batch_size: int, lr: float, seq_len: int,
                method: str, stage: str | None, lora_r: int, lora_alpha: int | None, merge: bool, seed: int) -> None:
    """Fine-tune BASE (a model id, a local folder, or a hub name when online) on a mix, as one stage.

    A LoRA run stays an adapter (a peft folder) tied to its base's weight hash.
    """
    from mixline import api

    with ctx.open() as st:
        res = api.train(st, base, mix_id, out, steps=steps, batch_size=batch_size, lr=lr, seq_len=seq_len, method=method,
                        stage=stage, lora_r=lora_r, lora_alpha=lora_alpha, merge=merge, seed=seed).to_dict()
    if emit(as_json, res):
        return
    click.echo(f"{res['model_id']} ({res['stage']}): final loss {res['final_loss']:.3f}, {res['tokens_per_second']:,.0f} tokens/s"
               + (f"; merged: {res['merged_model_id']}" if res.get("merged_model_id") else ""))
    sc = res["self_consumption"]
    if sc["self_consumed"] or sc["family"]:
        click.echo(f"warning: {sc['self_consumed']:,} training samples were written by this model or its ancestors, and "
                   f"{sc['family']:,} by models of its family ({sc['family_share']:.1%} of {sc['train_samples']:,}); "
                   "they are flagged (see `mixline why`)", err=True)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for s in values:
        if "=" not in s:
            raise MixlineError(f"{what} {s!r} must be NAME=VALUE")
        k, v = s.split("=", 1)
        out[k.strip()] = v
    return out


@command(model, "eval")
@click.argument("model_id")
@click.option("--set", "sets", multiple=True, required=True, help="NAME=PREDICATE over samples, e.g. general=\"source = 'wiki'\".")
@click.option("--adversarial", "adversarial", multiple=True,
              help="A set (by NAME) of red-team prompts: the model answers each, and the shares of toxic replies and "
                   "refusals are recorded as adversarial evals.")
@click.option("--max-docs", default=200, show_default=True)
def model_eval(ctx: Ctx, as_json: bool, model_id: str, sets: tuple[str, ...], adversarial: tuple[str, ...], max_docs: int) -> None:
    """Bits per character on held-out sets, compared with the parent model; red-team sets with --adversarial."""
    from mixline import api

    parsed = _pairs(sets, "--set")
    for a in adversarial:
        if a not in parsed:
            raise MixlineError(f"--adversarial {a!r} names no --set")
    with ctx.open() as st:
        plain = {k: v for k, v in parsed.items() if k not in adversarial}
        res: dict[str, Any] = api.evaluate(st, model_id, plain, max_docs).to_dict() if plain else {"model_id": model_id, "sets": {}}
        adv = [api.adversarial_eval(st, model_id, a, parsed[a], min(max_docs, 50)) for a in adversarial]
    res["adversarial"] = adv
    if emit(as_json, res):
        return
    for adv_set in adv:
        click.echo(f"{adv_set['set']} [adversarial]: {adv_set['toxic_reply_share']:.1%} toxic replies, {adv_set['refusal_share']:.1%} refusals "
                   f"on {adv_set['docs']} prompts")
    for name, r in res["sets"].items():
        click.echo(f"{name}: {r['bits_per_char']:.3f} bits/char on {r['docs']} docs" + (f" (parent {r['parent_bits_per_char']:.3f})" if "parent_bits_per_char" in r else ""))


@command(model, "generate")
@click.argument("model_id")
@click.option("--n", default=50, show_default=True)
@click.option("--prompts", "prompts_where", default="kind <> 'eval' AND synth_depth = 0", show_default=True, help="--where predicate for prompt samples.")
@click.option("--temperature", default=1.0, show_default=True)
@click.option("--max-new-tokens", default=48, show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_generate(ctx: Ctx, as_json: bool, model_id: str, n: int, prompts_where: str, temperature: float, max_new_tokens: int, seed: int) -> None:
    """Write N synthetic samples from prompts; each records its model, prompt and decoding."""
    from mixline import api

    with ctx.open() as st:
        res = api.generate(st, model_id, n=n, prompts_where=prompts_where, temperature=temperature,
                           max_new_tokens=max_new_tokens, seed=seed).to_dict()
    if not emit(as_json, res):
        click.echo(f"{res['generated']} samples from {res['model_id']} as source {res['source']} (synthetic depth {res['synth_depth']})")


@command(cli, "loop")
@click.argument("config")
@click.option("--workdir", default="loop-out", show_default=True, type=click.Path(path_type=Path), help="Where checkpoints go.")
def loop_cmd(ctx: Ctx, as_json: bool, config: str, workdir: Path) -> None:
    """Run generations of generate, mix, train, evaluate and drift check; resumes where it stopped."""
    from mixline import api

    with ctx.open() as st:
        rows = api.run_loop(st, config, workdir).generations
    if emit(as_json, rows):
        return
    for r in rows:
        click.echo(f"gen {r['generation']} {r['strategy']:<11} bits/char {r['bits_per_char']:.3f}  drift "
                   f"{'ALERT ' + ','.join(r['moved']) if r['drift_alert'] else ('ok' if r['drift_alert'] is not None else '-')}"
                   f"  model {r['model_id']}  mix {r['mix_id']}" + (f"  [{r['gate']}]" if r.get("gate") else ""))


@command(model, "register")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--parent", default=None, help="The model it was trained from (a model id or name in this store).")
@click.option("--mix", "mix_id", default=None, help="The mix it was trained on.")
@click.option("--stage", required=True, type=click.Choice(["pretraining", "continued-pretraining", "sft", "preference", "adapter", "merge"]))
@click.option("--name", default=None)
@click.option("--notes", default=None, help="Free text: the trainer, its config, where the run's logs are.")
def model_register(ctx: Ctx, as_json: bool, path: Path, parent: str | None, mix_id: str | None, stage: str, name: str | None,
                   notes: str | None) -> None:
    """Record a model trained outside mixline (a checkpoint or peft folder), so lineage and cards hold."""
    from mixline import api

    with ctx.open() as st:
        res = api.register_model(st, path, parent=parent, mix=mix_id, stage=stage, name=name, notes=notes)
    if not emit(as_json, res):
        click.echo(f"{res['model_id']}: {res['stage']} ({res['method']}), weights {res['weight_hash']}")


@command(model, "compare")
@click.argument("before")
@click.argument("after")
@click.option("--set", "sets", multiple=True, required=True, help="NAME=PREDICATE over samples (held out of both models' mixes).")
@click.option("--guard", "guards", multiple=True, help="A set (by NAME) that must not get worse: forgetting alert past --threshold.")
@click.option("--role", "role_pairs", multiple=True, help="NAME=general|domain|guard|adversarial, recorded with the evals.")
@click.option("--threshold", default=0.05, show_default=True, help="Relative increase in bits/char on a guard set that is forgetting.")
@click.option("--max-docs", default=200, show_default=True)
@click.option("--bootstrap", default=1000, show_default=True, help="Resamples over documents for the 95% CI.")
def model_compare(ctx: Ctx, as_json: bool, before: str, after: str, sets: tuple[str, ...], guards: tuple[str, ...],
                  role_pairs: tuple[str, ...], threshold: float, max_docs: int, bootstrap: int) -> None:
    """Bits/char before and after a stage on each set, the change with a bootstrap CI, and forgetting alerts."""
    from mixline import api

    roles = {**_pairs(role_pairs, "--role"), **{g: "guard" for g in guards}}
    with ctx.open() as st:
        res = api.compare_models(st, before, after, _pairs(sets, "--set"), roles=roles, threshold=threshold, max_docs=max_docs,
                                 bootstrap=bootstrap)
    if emit(as_json, res):
        return
    click.echo(f"{res['before']} -> {res['after']}")
    for name, r in res["sets"].items():
        click.echo(f"  {name:<16} {r['bits_per_char_before']:.4f} -> {r['bits_per_char_after']:.4f} bits/char "
                   f"({r['relative_change']:+.1%}, 95% CI {r['ci95'][0]:+.1%} to {r['ci95'][1]:+.1%}, {r['docs']} docs)"
                   + (f" [{r['role']}]" if r["role"] else "") + ("  FORGETTING ALERT" if r["forgetting_alert"] else ""))


@command(model, "compose")
@click.argument("adapters", nargs=-1, required=True)
@click.option("--weights", required=True, help="Comma-separated, one per adapter, e.g. 0.5,0.5.")
@click.option("--method", default="linear", type=click.Choice(["linear", "cat", "ties", "dare_ties"]), show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--name", default=None)
@click.option("--density", default=0.5, show_default=True, help="ties / dare_ties: share of weights kept.")
def model_compose(ctx: Ctx, as_json: bool, adapters: tuple[str, ...], weights: str, method: str, out: Path, name: str | None,
                  density: float) -> None:
    """Compose LoRA adapters of one base into a new adapter; reports interference on each parent's own held-out text."""
    from mixline import api

    try:
        w = [float(x) for x in weights.split(",")]
    except ValueError:
        raise MixlineError(f"--weights {weights!r} must be numbers separated by commas") from None
    with ctx.open() as st:
        res = api.compose_adapters(st, list(adapters), w, method, out, name=name, density=density)
    if emit(as_json, res):
        return
    click.echo(f"{res['model_id']}: {method} of {', '.join(res['parents'])} (weights {w}) on base {res['base_model_id']}")
    for i in res["interference"]:
        if "skipped" in i:
            click.echo(f"  {i['adapter']}: interference not measured ({i['skipped']})")
        else:
            click.echo(f"  on {i['adapter']}'s own held-out text: alone {i['alone']:.4f}, composed {i['composed']:.4f} bits/char "
                       f"(interference {i['interference']:+.1%})")


@command(model, "audit")
@click.argument("model_id")
@click.option("--candidates", default=10_000, show_default=True, help="Random secrets each canary is ranked against.")
@click.option("--extraction-samples", default=100, show_default=True, help="Training conversations prompted for extraction.")
@click.option("--prefix-tokens", default=32, show_default=True, help="Tokens of each sample given as the prompt (k).")
@click.option("--suffix-tokens", default=32, show_default=True, help="Tokens that must follow exactly (m).")
@click.option("--mia-docs", default=200, show_default=True, help="Members and held-out samples each, for membership inference.")
@click.option("--reference", default=None, metavar="MODEL", help="Reference model for membership inference (default: the parent, "
              "when it is a trained model).")
@click.option("--seed", default=0, show_default=True)
@click.option("--max-exposure", type=float, default=None, metavar="BITS",
              help="Fail (exit 6) if a canary whose secret was trained on is exposed more than this.")
@click.option("--max-extraction", type=float, default=None, metavar="SHARE",
              help="Fail (exit 6) if more than this share of the sampled conversations is reproduced verbatim.")
def model_audit(ctx: Ctx, as_json: bool, model_id: str, candidates: int, extraction_samples: int, prefix_tokens: int,
                suffix_tokens: int, mia_docs: int, reference: str | None, seed: int, max_exposure: float | None,
                max_extraction: float | None) -> None:
    """Privacy audit: canary exposure, verbatim extraction, membership inference; recorded with the model."""
    import sys

    from mixline.pipelines.audit import AuditConfig, audit

    cfg = AuditConfig(candidates=candidates, extraction_samples=extraction_samples, prefix_tokens=prefix_tokens,
                      suffix_tokens=suffix_tokens, mia_docs=mia_docs, reference=reference, seed=seed,
                      max_exposure=max_exposure, max_extraction=max_extraction)
    with ctx.open() as st:
        out = audit(st, model_id, cfg)
    if not emit(as_json, {k: v for k, v in out.items() if k != "canaries"} | {"canaries": out["canaries"]}):
        from mixline.pipelines.audit import describe

        for line in describe(out):
            click.echo(line)
    if out["failed"]:
        click.echo("audit FAILED: " + "; ".join(out["failed"]), err=True)
        sys.exit(6)


@command(model, "card")
@click.argument("model_id")
@click.option("--format", "fmt", default="md", type=click.Choice(["md", "json"]), show_default=True)
def model_card(ctx: Ctx, as_json: bool, model_id: str, fmt: str) -> None:
    """The provenance card: every stage, its data, its evaluations, forgetting alerts, drift checks, what it generated."""
    from mixline.pipelines.model_card import render_md

    from mixline import api

    with ctx.open(read_only=True) as st:
        c = api.model_card(st, model_id)
    if as_json or fmt == "json":
        emit(True, c)
    else:
        click.echo(render_md(c), nl=False)
