"""`--where` predicates are one checked expression; guards sit outside them as a semi-join."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from mixline.pipelines.mix import build
from mixline.store import Store
from mixline.store.select import scope, validate_where

from mixline.errors import PredicateError
from tests.test_curation_pipeline import add
from tests.test_mix import corpus, recipe

ESCAPES = [
    "TRUE) OR (TRUE",
    "kind = 'eval') OR (TRUE",
    "TRUE OR kind = 'eval' GROUP BY ALL",
    "TRUE ORDER BY 1",
    "TRUE LIMIT 1",
    "TRUE UNION SELECT * FROM samples",
    "TRUE; DROP TABLE samples",
    "(SELECT count(*) FROM read_text('notes.txt')) > 0",
    "EXISTS (SELECT 1 FROM store_secrets)",
    "sample_id IN (SELECT value FROM store_secrets)",
    "text = (SELECT value FROM main.store_secrets LIMIT 1)",
    "sample_id IN (SELECT sample_id FROM read_parquet('x.parquet'))",
    "sample_id IN (SELECT s.sample_id FROM sample_status s JOIN store_secrets k ON TRUE)",
    "length(query('SELECT 1')) > 0",
    "getenv('HOME') IS NOT NULL",
    "random() < 0.5",
    "nextval('seq') > 0",
    "sample_id IN (WITH k AS (SELECT value FROM store_secrets) SELECT value FROM k)",
    "TRUE QUALIFY TRUE",
]


@pytest.mark.parametrize("predicate", ESCAPES)
def test_escapes_and_reaches_are_refused(store: Store, predicate: str) -> None:
    with pytest.raises(PredicateError):
        validate_where(store, predicate)


def test_good_predicates_are_rebuilt_from_their_parse_tree(store: Store) -> None:
    assert validate_where(store, None) == "TRUE"
    assert validate_where(store, "  ") == "TRUE"
    assert validate_where(store, "kind = 'web' AND n_chars > 10") == "(((kind = 'web') AND (n_chars > 10)))"
    # Comments and trailing clauses that change nothing are dropped by the rebuild.
    assert validate_where(store, "kind = 'web' -- ) OR (TRUE") == "((kind = 'web'))"
    assert validate_where(store, "source IN ('a', 'b') OR text LIKE '%x%'").startswith('((("source" IN (\'a\', \'b\'))')
    # CAST becomes TRY_CAST: a failed conversion must not print the sample's text.
    assert "TRY_CAST" in validate_where(store, "CAST(text AS INTEGER) > 3")
    ok = validate_where(store, "sample_id IN (SELECT sample_id FROM sample_status WHERE status = 'kept')")
    assert "sample_status" in ok
    with pytest.raises(PredicateError, match="Columns of samples: sample_id"):
        validate_where(store, "nope = 1")


def test_scope_is_a_semi_join_on_sample_id(store: Store) -> None:
    assert scope(store, None) == "TRUE"
    assert scope(store, "kind = 'web'", "x") == "x.sample_id IN (SELECT sample_id FROM samples WHERE ((kind = 'web')))"


def test_cast_of_text_cannot_leak_it_into_an_error(store: Store) -> None:
    add(store, [("alice@example.com wrote this", "web", 0, "crawl")], run="a")
    pred = validate_where(store, "CAST(text AS INTEGER) > 3")
    assert store.scalar(f"SELECT count(*) FROM samples WHERE {pred}") == 0


def test_mix_where_cannot_bring_in_eval_or_uncurated_samples(store: Store) -> None:
    corpus(store)
    add(store, [("an eval item that must never enter", "eval", 0, "bench")], run="e")
    add(store, [("uncurated web text " * 3, "web", 0, "crawl")], run="u")
    with pytest.raises(PredicateError):
        build(store, recipe(where="TRUE) OR (TRUE"))
    with pytest.raises(PredicateError):
        build(store, recipe(groups=[{"name": "all", "where": "kind = 'eval') OR (TRUE"}]))
    # A predicate that selects everything still meets the guards outside it.
    r = build(store, recipe(groups=[{"name": "all", "where": "TRUE OR kind = 'eval'"}]))
    kinds = {k for (k,) in store.execute("SELECT DISTINCT s.kind FROM mix_members m JOIN samples s USING (sample_id) "
                                         "WHERE m.mix_id = ?", [r.mix_id]).fetchall()}
    assert "eval" not in kinds and r.summary["members"] == 19


_TOKENS = hs.sampled_from(["TRUE", "FALSE", "kind", "'web'", "=", "<>", "AND", "OR", "NOT", "(", ")", ";", "--",
                           "/*", "SELECT", "FROM", "store_secrets", "read_text('x')", "1", "n_chars", ">",
                           "UNION", "GROUP BY", "LIMIT", ",", "'", "\\", "IN", "samples", "sample_id"])


@settings(max_examples=300, deadline=None)
@given(hs.lists(_TOKENS, min_size=1, max_size=12))
def test_fuzzed_predicates_are_an_error_or_one_safe_expression(predicate_tokens: list[str]) -> None:
    predicate = " ".join(predicate_tokens)
    with Store(":memory:") as st:
        try:
            expr = validate_where(st, predicate)
        except PredicateError:
            return
        # Whatever passed is one expression that reads nothing but samples (a string constant may say anything).
        code = re.sub(r"'(?:[^']|'')*'", "''", expr).lower()
        assert "store_secrets" not in code and "read_text" not in code
        st.execute(f"SELECT count(*) FROM samples WHERE {expr}").fetchall()
