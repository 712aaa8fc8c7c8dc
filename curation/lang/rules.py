"""Per-language values for the quality rules: the built-in profiles, merged with a recipe's overrides."""

from __future__ import annotations

import functools
from typing import Any

import pyarrow as pa
from mixline.curation.lang.identify import profiles

from mixline.errors import ConfigError

GOPHER_KEYS = ("stop_words", "stop_words_as_substrings", "min_stop_words", "min_avg_word_length", "max_avg_word_length",
               "min_alpha_words_ratio")
FINEWEB_KEYS = ("min_line_punct_ratio",)


@functools.lru_cache(maxsize=4)
def builtin(keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The shipped profiles' values for these keys, with each profile's script. English is not
    among them: it gets the step's own parameters, which are datatrove's and FineWeb's."""
    return {lang: {"script": p["script"], **{k: p[k] for k in keys if k in p}} for lang, p in profiles().items()
            if lang != "en"}


def merged(step: str, keys: tuple[str, ...], overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Built-in values, with a recipe's `[steps.languages.XX]` tables over them (a new code adds a language)."""
    out = {lang: dict(v) for lang, v in builtin(keys).items()}
    if not isinstance(overrides, dict):
        raise ConfigError(f"step {step}: `languages` must be a table of language codes, e.g. [steps.languages.de]")
    for lang, values in overrides.items():
        if not isinstance(values, dict):
            raise ConfigError(f"step {step}: languages.{lang} must be a table of values such as min_stop_words = 2")
        unknown = set(values) - {*keys, "script", "off"}
        if unknown:
            raise ConfigError(f"step {step}: languages.{lang} has unknown keys {', '.join(sorted(unknown))}; "
                              f"use {', '.join(keys)}")
        base = out.setdefault(lang, {"script": values.get("script", "Latn")})
        off = values.get("off", ())
        if isinstance(off, str) or not all(k in keys for k in off):
            raise ConfigError(f"step {step}: languages.{lang}.off must list rules to turn off, among {', '.join(keys)}")
        base.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if k != "off"})
        base.update({k: None for k in off})
    return out


def column(batch: pa.Table, name: str) -> list[Any]:
    return batch.column(name).to_pylist() if name in batch.column_names else [None] * batch.num_rows
