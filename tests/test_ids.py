import hashlib

import pytest
from mixline.store.ids import config_hash, content_id, step_id

from mixline.errors import LineageError


def test_content_id_is_sha256_prefix_and_stable():
    assert content_id("hello") == hashlib.sha256(b"hello").hexdigest()[:32]
    assert content_id("hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e"


def test_content_id_matches_duckdb_sha256(store):
    text = "Grüße, 世界\n"
    assert store.scalar("SELECT substr(sha256(?), 1, 32)", [text]) == content_id(text)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_step_id_sorts_parents_and_names_version():
    a = step_id("gopher_quality", 1, {"min_words": 50}, ["p2", "p1"])
    assert a == step_id("gopher_quality", 1, {"min_words": 50}, ["p1", "p2"])
    assert a != step_id("gopher_quality", 2, {"min_words": 50}, ["p1", "p2"])


def test_unhashable_config_is_an_error_not_a_random_id():
    with pytest.raises(LineageError, match="cannot hash config"):
        config_hash({"f": object()})
