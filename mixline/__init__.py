"""mixline: curate LLM training data and trace its lineage.

    >>> import mixline
    >>> with mixline.Store.open("mixline.duckdb") as st:
    ...     mixline.ingest(st, "answers.jsonl", kind="domain", domain="medical")
    ...     print(mixline.curate(st).kept)

The names below are loaded on first use, so `import mixline` stays cheap and the
subpackages (`mixline.store`, `mixline.curation`, ...) can import `mixline.errors`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("CurateResult", "DriftResult", "EvalResult", "ExportResult", "Impact", "IngestResult", "LoopResult",
        "MixDiff", "MixGate", "MixInfo", "MixRecipe", "MixResult", "ModelResult", "Recipe", "SelfConsumption", "Store",
        "Trace", "Trend", "VerifyResult", "Why", "build_mix", "curate", "diff_mixes", "drift_check", "drift_check_mix",
        "drift_trend", "evaluate", "export_mix", "generate", "impact", "ingest", "init_tiny", "run_loop", "register_model", "compare_models", "compose_adapters", "model_card", "adversarial_eval",
        "self_consumption", "show_mix", "trace", "train", "verify_export", "why", "plant_canaries", "audit_model")
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from mixline import api

        return getattr(api, name)
    raise AttributeError(f"module 'mixline' has no attribute {name!r}")
