"""Mix and model references: full ids, names, and unique prefixes; an ambiguous prefix is an error."""

from __future__ import annotations

import pytest
from mixline.pipelines.mix import resolve_mix
from mixline.pipelines.models import resolve_model
from mixline.store import Store

from mixline.errors import ConfigError, NotFoundError


def _mixes(store: Store) -> None:
    store.append_rows("mixes", [{"mix_id": "mix-abc111", "name": "first"}, {"mix_id": "mix-abc222", "name": "second"}])


def test_mix_full_id_name_and_unique_prefix(store: Store) -> None:
    _mixes(store)
    assert resolve_mix(store, "mix-abc111") == "mix-abc111"
    assert resolve_mix(store, "second") == "mix-abc222"
    assert resolve_mix(store, "mix-abc2") == "mix-abc222"


def test_ambiguous_mix_prefix_is_an_error(store: Store) -> None:
    _mixes(store)
    with pytest.raises(ConfigError, match="ambiguous.*mix-abc111"):
        resolve_mix(store, "mix-abc")
    with pytest.raises(NotFoundError, match="no mix 'mix-zzz'"):
        resolve_mix(store, "mix-zzz")


def test_ambiguous_model_prefix_is_an_error(store: Store, tmp_path) -> None:
    store.append_rows("models", [{"model_id": "model-ff01", "name": "a", "checkpoint_uri": "/ckpt/a"},
                                 {"model_id": "model-ff02", "name": "b", "checkpoint_uri": "/ckpt/b"}])
    assert resolve_model(store, "model-ff02") == ("model-ff02", "/ckpt/b")
    assert resolve_model(store, "a") == ("model-ff01", "/ckpt/a")
    with pytest.raises(ConfigError, match="model prefix 'model-ff' is ambiguous"):
        resolve_model(store, "model-ff")
    assert resolve_model(store, str(tmp_path)) == (None, str(tmp_path))
