"""The store's schema, as numbered migrations applied in order, each in one transaction.

Tables follow DESIGN.md. Keys are deterministic strings. Edges also carry 64-bit integer
keys (the first 16 hex digits of each id) because joins over 20M integers run several
times faster than over 32-character strings; lineage code checks the full id after the
join. There are no indexes until `mixline optimize` builds them, because DuckDB's bulk
appends slow down under ART indexes and small stores do not need them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


MIGRATIONS: list[Migration] = []


def migration(version: int, name: str) -> Callable[[Callable[[duckdb.DuckDBPyConnection], None]], Callable[[duckdb.DuckDBPyConnection], None]]:
    """Register a migration. Versions must be added in increasing order."""

    def register(fn: Callable[[duckdb.DuckDBPyConnection], None]) -> Callable[[duckdb.DuckDBPyConnection], None]:
        if MIGRATIONS and MIGRATIONS[-1].version >= version:
            raise RuntimeError(f"migration {version} ({name}) registered out of order")
        MIGRATIONS.append(Migration(version, name, fn))
        return fn

    return register


EDGES_DDL = """CREATE TABLE {name} (
            child_id VARCHAR NOT NULL, parent_id VARCHAR NOT NULL, relation VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL, step VARCHAR,
            child_key UBIGINT NOT NULL, parent_key UBIGINT NOT NULL)"""


@migration(1, "core")
def _core(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        CREATE TABLE sources (
            source_id VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            uri VARCHAR, license VARCHAR, domain VARCHAR,
            created_run_id VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE samples (
            sample_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL, source VARCHAR NOT NULL,
            kind VARCHAR NOT NULL, text VARCHAR NOT NULL, messages JSON, content_hash VARCHAR NOT NULL,
            lang VARCHAR, domain VARCHAR, n_chars BIGINT NOT NULL, n_tokens BIGINT,
            synth_depth INTEGER NOT NULL DEFAULT 0, created_run_id VARCHAR NOT NULL);
        CREATE TABLE sample_origins (
            sample_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
            file VARCHAR, locator VARCHAR, original_id VARCHAR, url VARCHAR, meta JSON);
        {EDGES_DDL.format(name="edges")};
        CREATE TABLE runs (
            run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, step VARCHAR NOT NULL,
            step_version INTEGER NOT NULL, config JSON NOT NULL, config_hash VARCHAR NOT NULL,
            code_version VARCHAR NOT NULL, parent_run_id VARCHAR,
            started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, status VARCHAR NOT NULL,
            stats JSON, error VARCHAR);
        CREATE TABLE decisions (
            run_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, step VARCHAR NOT NULL,
            verdict VARCHAR NOT NULL, reason VARCHAR, score DOUBLE);
        CREATE TABLE quarantine (
            run_id VARCHAR NOT NULL, source_id VARCHAR, file VARCHAR NOT NULL,
            locator VARCHAR NOT NULL, reason VARCHAR NOT NULL, excerpt VARCHAR);
        """
    )


@migration(2, "lineage_targets")
def _lineage_targets(con: duckdb.DuckDBPyConnection) -> None:
    """Mixes, models and generations: what samples reach, for `impact`."""
    con.execute(
        """
        CREATE TABLE mixes (
            mix_id VARCHAR NOT NULL, name VARCHAR, recipe JSON, recipe_hash VARCHAR,
            run_id VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE mix_members (
            mix_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, repeats INTEGER NOT NULL DEFAULT 1,
            split VARCHAR NOT NULL DEFAULT 'train');
        CREATE TABLE models (
            model_id VARCHAR NOT NULL, name VARCHAR, base_ref VARCHAR, parent_model_id VARCHAR,
            method VARCHAR, mix_id VARCHAR, train_run_id VARCHAR, checkpoint_uri VARCHAR,
            config JSON, created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE generations (
            sample_id VARCHAR NOT NULL, model_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
            prompt_sample_id VARCHAR, template_hash VARCHAR, decoding JSON, seed BIGINT);
        """
    )


@migration(3, "curation")
def _curation(con: duckdb.DuckDBPyConnection) -> None:
    """Dedup clusters and the embedding cache."""
    con.execute(
        """
        CREATE TABLE clusters (
            run_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, cluster_id VARCHAR NOT NULL,
            method VARCHAR NOT NULL, kept BOOLEAN NOT NULL);
        CREATE TABLE embeddings (
            content_hash VARCHAR NOT NULL, model VARCHAR NOT NULL, vector FLOAT[] NOT NULL);
        """
    )



def schema_version() -> int:
    return MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def pending(con: duckdb.DuckDBPyConnection) -> list[Migration]:
    have = current_version(con)
    return [m for m in MIGRATIONS if m.version > have]


@migration(4, "sample_status")
def _sample_status(con: duckdb.DuckDBPyConnection) -> None:
    """Each curated sample's status from its latest successful curation run."""
    con.execute(
        """
        CREATE VIEW sample_status AS
        WITH dr AS (
            SELECT d.sample_id, d.verdict, d.run_id, r.started_at
            FROM decisions d JOIN runs r USING (run_id)
            WHERE r.status = 'ok' AND r.kind = 'curate'),
        last AS (SELECT sample_id, max(started_at) AS t FROM dr GROUP BY sample_id)
        SELECT dr.sample_id,
               CASE WHEN bool_or(dr.verdict = 'dropped') THEN 'dropped'
                    WHEN bool_or(dr.verdict = 'rewritten') THEN 'rewritten'
                    ELSE 'kept' END AS status,
               any_value(dr.run_id) AS run_id
        FROM dr JOIN last ON dr.sample_id = last.sample_id AND dr.started_at = last.t
        GROUP BY dr.sample_id
        """
    )


@migration(5, "pii")
def _pii(con: duckdb.DuckDBPyConnection) -> None:
    """Redactions (never the value), keyed fingerprints of detected values, and the store's PII key."""
    con.execute(
        """
        CREATE TABLE redactions (
            sample_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, entity_type VARCHAR NOT NULL,
            "start" INTEGER NOT NULL, "end" INTEGER NOT NULL, detector VARCHAR NOT NULL, policy VARCHAR NOT NULL);
        CREATE TABLE pii_fingerprints (
            fingerprint VARCHAR NOT NULL, entity_type VARCHAR NOT NULL, run_id VARCHAR NOT NULL);
        CREATE TABLE store_secrets (name VARCHAR NOT NULL, value VARCHAR NOT NULL);
        """
    )


@migration(6, "drift")
def _drift(con: duckdb.DuckDBPyConnection) -> None:
    """Drift checks: one row per metric per check, with its calibrated threshold."""
    con.execute(
        """
        CREATE TABLE drift (
            run_id VARCHAR NOT NULL, subject VARCHAR NOT NULL, reference VARCHAR NOT NULL,
            metric VARCHAR NOT NULL, value DOUBLE, reference_value DOUBLE, distance DOUBLE,
            threshold DOUBLE, alert BOOLEAN NOT NULL, created_at TIMESTAMP DEFAULT current_timestamp);
        """
    )


@migration(7, "models")
def _models(con: duckdb.DuckDBPyConnection) -> None:
    """Evaluations per model and eval set, and the state of resumable loops."""
    con.execute(
        """
        CREATE TABLE evals (
            model_id VARCHAR NOT NULL, eval_set VARCHAR NOT NULL, metric VARCHAR NOT NULL,
            value DOUBLE NOT NULL, run_id VARCHAR NOT NULL, n_docs INTEGER, n_chars BIGINT);
        CREATE TABLE loop_state (
            loop_id VARCHAR NOT NULL, generation INTEGER NOT NULL, strategy VARCHAR NOT NULL,
            stage VARCHAR NOT NULL, output JSON NOT NULL, run_id VARCHAR NOT NULL);
        """
    )


@migration(8, "sample_scores")
def _sample_scores(con: duckdb.DuckDBPyConnection) -> None:
    """Each sample's latest score per step (toxicity, language, ...), for predicates and mixes."""
    con.execute(
        """
        CREATE VIEW sample_scores AS
        SELECT d.sample_id, regexp_replace(d.step, '_v[0-9]+$', '') AS step,
               arg_max(d.score, r.started_at) AS score, arg_max(d.reason, r.started_at) AS reason,
               arg_max(d.run_id, r.started_at) AS run_id
        FROM decisions d JOIN runs r USING (run_id)
        WHERE r.status = 'ok' AND r.kind = 'curate' AND d.score IS NOT NULL
        GROUP BY d.sample_id, regexp_replace(d.step, '_v[0-9]+$', '')
        """
    )


@migration(9, "drift_null")
def _drift_null(con: duckdb.DuckDBPyConnection) -> None:
    """Each drift metric's null (reference-vs-reference) mean and spread, for trend tests across generations."""
    con.execute("ALTER TABLE drift ADD COLUMN null_mean DOUBLE")
    con.execute("ALTER TABLE drift ADD COLUMN null_sd DOUBLE")


@migration(10, "training_stages")
def _training_stages(con: duckdb.DuckDBPyConnection) -> None:
    """Training stages as lineage: each model's stage and weight hash, eval-set roles, and
    before/after comparisons with their forgetting alerts."""
    con.execute(
        """
        ALTER TABLE models ADD COLUMN stage VARCHAR;
        ALTER TABLE models ADD COLUMN weight_hash VARCHAR;
        ALTER TABLE evals ADD COLUMN role VARCHAR;
        CREATE TABLE model_comparisons (
            run_id VARCHAR NOT NULL, before_model_id VARCHAR NOT NULL, after_model_id VARCHAR NOT NULL,
            eval_set VARCHAR NOT NULL, role VARCHAR, bits_before DOUBLE, bits_after DOUBLE, change DOUBLE,
            relative_change DOUBLE, ci_low DOUBLE, ci_high DOUBLE, n_docs INTEGER, threshold DOUBLE,
            alert BOOLEAN NOT NULL, created_at TIMESTAMP DEFAULT current_timestamp);
        """
    )


@migration(11, "lake")
def _lake(con: duckdb.DuckDBPyConnection) -> None:
    """Many writers: which process owns a running run, and the DuckLake snapshot each run
    committed (NULL in a single-file store), which is where time travel to it starts."""
    con.execute("ALTER TABLE runs ADD COLUMN owner VARCHAR")
    con.execute("ALTER TABLE runs ADD COLUMN snapshot_id BIGINT")


@migration(12, "run_starts")
def _run_starts(con: duckdb.DuckDBPyConnection) -> None:
    """A DuckLake run announces itself in a commit of its own before it works, so that readers
    see it running (its `runs` row is inserted once, with the outcome). A single-file store
    writes a 'running' row in `runs` instead and leaves this table empty."""
    con.execute(
        """
        CREATE TABLE run_starts (
            run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, step VARCHAR NOT NULL, step_version INTEGER,
            config JSON, config_hash VARCHAR, code_version VARCHAR, parent_run_id VARCHAR,
            started_at TIMESTAMP NOT NULL, owner VARCHAR)
        """
    )


@migration(13, "languages")
def _languages(con: duckdb.DuckDBPyConnection) -> None:
    """Each sample's script (ISO 15924), the confidence of its `lang`, and the other languages'
    shares of a mixed document (JSON), as the `language` step records them."""
    con.execute("ALTER TABLE samples ADD COLUMN script VARCHAR")
    con.execute("ALTER TABLE samples ADD COLUMN lang_score DOUBLE")
    con.execute("ALTER TABLE samples ADD COLUMN lang_mix JSON")


@migration(14, "classifiers")
def _classifiers(con: duckdb.DuckDBPyConnection) -> None:
    """Learned classifiers as lineage: each one's training mix, parameters, weights and their hash,
    and held-out metrics; the scores it gave (one row per sample and class, cached); and every run
    and mix that used it, so that `impact` of a training sample reaches what the classifier shaped."""
    con.execute(
        """
        CREATE TABLE classifiers (
            classifier_id VARCHAR NOT NULL, name VARCHAR NOT NULL, version INTEGER NOT NULL,
            method VARCHAR NOT NULL, labels JSON NOT NULL, params JSON NOT NULL, mix_id VARCHAR NOT NULL,
            weight_hash VARCHAR NOT NULL, weights BLOB NOT NULL, metrics JSON, run_id VARCHAR NOT NULL,
            created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE classifier_scores (
            classifier_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, label VARCHAR NOT NULL,
            score DOUBLE NOT NULL, run_id VARCHAR NOT NULL);
        CREATE TABLE classifier_uses (
            classifier_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, mix_id VARCHAR, step VARCHAR,
            created_at TIMESTAMP DEFAULT current_timestamp);
        """
    )


@migration(15, "privacy_audit")
def _privacy_audit(con: duckdb.DuckDBPyConnection) -> None:
    """Canaries and model audits. A canary is a random secret planted into copies of a sample
    (`canary_copies`, each copy a sample `canary_of` its carrier); the secret itself is kept in
    `store_secrets`, which no reader sees. An audit measures one model: canary exposure,
    verbatim extraction and membership inference (`audits`, one row each), with each canary's
    exposure in `audit_canaries`."""
    con.execute(
        """
        CREATE TABLE canaries (
            canary_id VARCHAR NOT NULL, format VARCHAR NOT NULL, repeats INTEGER NOT NULL,
            carrier_id VARCHAR NOT NULL, source VARCHAR NOT NULL, space DOUBLE NOT NULL,
            run_id VARCHAR NOT NULL, created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE canary_copies (canary_id VARCHAR NOT NULL, sample_id VARCHAR NOT NULL, copy INTEGER NOT NULL);
        CREATE TABLE audits (
            audit_id VARCHAR NOT NULL, model_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, mix_id VARCHAR,
            config JSON NOT NULL, results JSON NOT NULL, limits JSON, passed BOOLEAN,
            created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE audit_canaries (
            audit_id VARCHAR NOT NULL, canary_id VARCHAR NOT NULL, format VARCHAR NOT NULL,
            planted_copies INTEGER NOT NULL, trained_copies INTEGER NOT NULL, secret_trained INTEGER NOT NULL,
            exposure_bits DOUBLE NOT NULL, exposure_fit_bits DOUBLE, rank BIGINT NOT NULL,
            candidates BIGINT NOT NULL, exact BOOLEAN NOT NULL, extracted BOOLEAN NOT NULL);
        """
    )


@migration(16, "mixture_search")
def _mixture_search(con: duckdb.DuckDBPyConnection) -> None:
    """Mixture searches: the recipe and settings of each (`mix_searches`), and every proxy it
    trained, with its weights, mix, model and losses (`search_proxies`), so that a killed search
    resumes and a chosen mix can say how its weights were found."""
    con.execute(
        """
        CREATE TABLE mix_searches (
            search_id VARCHAR NOT NULL, name VARCHAR NOT NULL, recipe JSON NOT NULL, config JSON NOT NULL,
            status VARCHAR NOT NULL, result JSON, chosen_mix_id VARCHAR, run_id VARCHAR NOT NULL,
            created_at TIMESTAMP DEFAULT current_timestamp);
        CREATE TABLE search_proxies (
            search_id VARCHAR NOT NULL, idx INTEGER NOT NULL, role VARCHAR NOT NULL, weights JSON NOT NULL,
            mix_id VARCHAR NOT NULL, model_id VARCHAR NOT NULL, seed INTEGER NOT NULL,
            target_bpc DOUBLE NOT NULL, general_bpc DOUBLE NOT NULL, run_id VARCHAR NOT NULL,
            created_at TIMESTAMP DEFAULT current_timestamp);
        """
    )


# What readers see as `samples`: the rows as written, with each sample's newest annotations
# (a later run's language or token count wins; a run's rows are never updated).
# lineage.trace applies the same rule to one sample, without the joins.
SAMPLES_VIEW = """
    CREATE VIEW samples AS
    SELECT r.* REPLACE (
               CASE WHEN l.sample_id IS NULL THEN r.lang ELSE l.a.lang END AS lang,
               CASE WHEN l.sample_id IS NULL THEN r.script ELSE l.a.script END AS script,
               CASE WHEN l.sample_id IS NULL THEN r.lang_score ELSE l.a.lang_score END AS lang_score,
               CASE WHEN l.sample_id IS NULL THEN r.lang_mix ELSE l.a.lang_mix END AS lang_mix,
               coalesce(t.n_tokens, r.n_tokens) AS n_tokens)
    FROM sample_rows r
    LEFT JOIN (SELECT sample_id, arg_max({'lang': lang, 'script': script, 'lang_score': lang_score, 'lang_mix': lang_mix},
                                         (annotated_at, run_id)) AS a
               FROM sample_annotations WHERE kind = 'language' GROUP BY sample_id) l ON l.sample_id = r.sample_id
    LEFT JOIN (SELECT sample_id, arg_max(n_tokens, (annotated_at, run_id)) AS n_tokens
               FROM sample_annotations WHERE kind = 'tokens' GROUP BY sample_id) t ON t.sample_id = r.sample_id
"""


@migration(17, "annotations")
def _annotations(con: duckdb.DuckDBPyConnection) -> None:
    """Writers that do not conflict: a sample's row is written once (`sample_rows`), and what a
    later run learns about it (language, token count) is a row of its own in the insert-only
    `sample_annotations`. So a curate never UPDATEs a table that an ingest inserts into, which
    on a DuckLake store made one of the two fail. `samples` is the view that joins them."""
    # An index (from `mixline optimize`) pins the table's name: dropped here and made again
    # in a transaction of its own (`reindex_after`), as DuckDB cannot do both in one.
    for (name,) in con.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'samples' "
                               "AND database_name = current_database()").fetchall():
        con.execute(f'DROP INDEX "{name}"')
    con.execute("ALTER TABLE samples RENAME TO sample_rows")
    con.execute(
        """
        CREATE TABLE sample_annotations (
            sample_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            annotated_at TIMESTAMP NOT NULL, lang VARCHAR, script VARCHAR, lang_score DOUBLE,
            lang_mix JSON, n_tokens BIGINT)
        """
    )
    con.execute(SAMPLES_VIEW)


def reindex_after(con: duckdb.DuckDBPyConnection, applied: list[int]) -> None:
    """Once v17 has renamed `samples`, an optimized store gets its sample index back."""
    if 17 not in applied:
        return
    have = {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes() WHERE database_name = current_database()")
            .fetchall()}
    if "edges_child_key" in have:  # `mixline optimize` had run
        for name, target in (("samples_sample_id", "sample_rows (sample_id)"),
                             ("annotations_sample_id", "sample_annotations (sample_id)")):
            if name not in have:
                con.execute(f"CREATE INDEX {name} ON {target}")
