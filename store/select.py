"""`--where PREDICATE`: one checked convention for selecting samples everywhere in mixline.

A predicate is parsed by DuckDB's own parser (`json_serialize_sql`), checked node by node,
and rebuilt from the parse tree (`json_deserialize_sql`), so what reaches SQL is exactly one
boolean expression over `samples`. It cannot close its parentheses, add clauses, read other
tables or files, or call table functions. Guards (eval samples, raw PII parents, curation
status) are applied around the selection as a semi-join (`scope`), never inside it.

`check_query` applies the same parser to `mixline sql`: one SELECT, no hidden tables, and
only catalogue table functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from mixline.store.store import Store

from mixline.errors import MixlineError, NotFoundError, PredicateError, ReadOnlyError

_PREFIX = "SELECT * FROM samples WHERE "
# Lineage tables and views a predicate may read, as `sample_id IN (SELECT sample_id FROM <t> ...)`.
PREDICATE_VIEWS = frozenset({"sample_status", "sample_scores", "mix_members", "decisions", "sample_origins", "edges",
                             "generations", "clusters", "redactions", "classifier_scores", "canary_copies"})
# `score('NAME')`, `score('NAME', 'LABEL')` and `label('NAME')`: a learned classifier's cached
# score or predicted label of the row's sample (NAME is a classifier name, NAME@vN, or an id).
CLASSIFIER_FUNCTIONS = ("score", "label")
# Tables no user query may read: the PII pseudonym key never leaves the store, and a sample's
# raw row is read through `samples`, which withholds unscrubbed text.
HIDDEN_TABLES = frozenset({"store_secrets", "sample_rows"})
# Expression node classes a predicate may contain.
_CLASSES = frozenset({"COLUMN_REF", "CONSTANT", "COMPARISON", "CONJUNCTION", "OPERATOR", "FUNCTION",
                      "CAST", "CASE", "BETWEEN", "COLLATE", "LAMBDA", "LAMBDA_REF", "SUBQUERY"})
# Functions that read state outside the row, change state, or are not reproducible.
_DENIED_FUNCTIONS = frozenset({"query", "query_table", "getenv", "current_setting", "nextval", "currval",
                               "setseed", "random", "uuid", "gen_random_uuid", "uuidv4", "uuidv7",
                               "sql_auto_complete", "which_secret", "checkpoint", "force_checkpoint",
                               "sniff_csv", "txid_current", "current_query"})
_DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "json_execute")
# Table functions `mixline sql` may call: the catalogue and generators, nothing that reads files.
SQL_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree",
                                 "duckdb_tables", "duckdb_columns", "duckdb_views", "duckdb_schemas",
                                 "duckdb_indexes", "duckdb_constraints", "duckdb_types", "duckdb_functions",
                                 "pragma_table_info"})


def _parse(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise PredicateError("the SQL holds a lone surrogate (half of a UTF-16 pair); remove it") from None
    out: dict[str, Any] = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])  # type: ignore[index]
    return out


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in ("query_location", "where_clause")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _function_denied(name: str) -> bool:
    name = name.lower()
    return name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES)


def _check_expression(expr: dict[str, Any], predicate: str) -> None:
    """Refuse any node a boolean expression over one sample's columns does not need."""

    def refuse(what: str) -> PredicateError:
        return PredicateError(f"--where {predicate!r}: {what} is not allowed in a predicate; write one boolean "
                              "expression over the columns of samples, e.g. \"source = 'oasst' AND n_chars > 200\"")

    for node in _walk(expr):
        cls = node.get("class")
        if cls is None:
            if node.get("type") == "SELECT_NODE":
                _check_subquery(node, predicate, refuse)
            elif node.get("type") in ("TABLE_FUNCTION", "JOIN", "SUBQUERY", "EXPRESSION_LIST",
                                      "SET_OPERATION_NODE", "CTE_NODE", "RECURSIVE_CTE_NODE"):
                raise refuse(f"a {node['type'].lower().replace('_', ' ')}")
            continue
        if cls not in _CLASSES:
            raise refuse(f"a {cls.lower().replace('_', ' ')} expression")
        if cls == "FUNCTION":
            if node.get("schema") or node.get("catalog"):
                raise refuse(f"the qualified function {node.get('schema')}.{node['function_name']}")
            if _function_denied(node["function_name"]):
                raise refuse(f"the function {node['function_name']}()")
        if cls == "CAST":
            # A failed CAST prints the value it could not convert; TRY_CAST gives NULL instead,
            # so no sample text reaches an error message or runs.error.
            node["try_cast"] = True


def _check_subquery(node: dict[str, Any], predicate: str, refuse: Any) -> None:
    """Allow `sample_id IN (SELECT sample_id FROM sample_status WHERE ...)`, and nothing wider."""
    table = node.get("from_table") or {}
    if table.get("type") != "BASE_TABLE" or table.get("table_name", "").lower() not in PREDICATE_VIEWS \
            or table.get("schema_name") or table.get("catalog_name"):
        name = table.get("table_name") or table.get("type", "").lower()
        raise refuse(f"a subquery over {name!r} (only {', '.join(sorted(PREDICATE_VIEWS))} may be queried)")
    has_cte = bool(node.get("cte_map", {}).get("map"))
    has_modifier = any(m.get("type") != "LIMIT_MODIFIER" for m in node.get("modifiers") or [])
    if has_cte or has_modifier:
        raise refuse("a subquery with CTEs or modifiers")


def validate_where(store: Store, predicate: str | None) -> str:
    """The checked, rebuilt predicate, parenthesised, or raise PredicateError.

    It must be one boolean SQL expression over the columns of `samples`; a subquery may read
    the lineage tables in PREDICATE_VIEWS, for example
    `sample_id IN (SELECT sample_id FROM mix_members WHERE split = 'heldout')`. An unknown column is named in the error together with the
    columns that exist.
    """
    if predicate is None or not predicate.strip():
        return "TRUE"
    if "\x00" in predicate:
        raise PredicateError(f"--where {predicate!r}: the predicate holds a NUL byte")
    tree = _parse(store.con, _PREFIX + predicate)
    if tree.get("error"):
        raise PredicateError(f"--where {predicate!r} is not one SQL expression: {tree.get('error_message')}")
    baseline = _parse(store.con, _PREFIX + "TRUE")
    stmts = tree.get("statements") or []
    if len(stmts) != 1 or _strip(stmts[0]) != _strip(baseline["statements"][0]):
        raise PredicateError(
            f"--where {predicate!r}: a predicate is one boolean expression; it cannot close its parentheses, "
            "add clauses (GROUP BY, ORDER BY, LIMIT, UNION) or a second statement")
    where = stmts[0]["node"]["where_clause"]
    _check_expression(where, predicate)
    stmts[0]["node"]["where_clause"] = _classifier_calls(store, where, predicate)
    rebuilt = str(store.con.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchone()[0])  # type: ignore[index]
    if not rebuilt.startswith(_PREFIX):
        raise PredicateError(f"--where {predicate!r}: could not rebuild the predicate from its parse tree")
    expr = f"({rebuilt[len(_PREFIX):]})"
    try:
        store.execute(f"EXPLAIN SELECT count(*) FROM samples WHERE {expr}")
    except duckdb.BinderException as exc:
        cols = [r[0] for r in store.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'samples' ORDER BY ordinal_position").fetchall()]
        raise PredicateError(
            f"--where {predicate!r}: {_first_line(exc)}. Columns of samples: {', '.join(cols)}"
        ) from exc
    except duckdb.Error as exc:
        raise PredicateError(f"--where {predicate!r} is not a valid SQL predicate: {_first_line(exc)}") from exc
    return expr


def _classifier_call(node: dict[str, Any], predicate: str) -> tuple[str, str, str | None]:
    """(function, classifier ref, label or None) of a `score(...)` / `label(...)` call."""
    fn = node["function_name"].lower()
    args = node.get("children") or []
    consts = [a.get("value", {}).get("value") for a in args if a.get("class") == "CONSTANT"]
    if len(consts) != len(args) or not 1 <= len(args) <= (2 if fn == "score" else 1) \
            or not all(isinstance(c, str) for c in consts):
        usage = "score('NAME') or score('NAME', 'LABEL')" if fn == "score" else "label('NAME')"
        raise PredicateError(f"--where {predicate!r}: write {usage}, with the classifier's name in quotes")
    return fn, consts[0], consts[1] if len(consts) > 1 else None


def referenced_classifiers(store: Store, predicate: str | None) -> list[str]:
    """The ids of the classifiers a predicate's score() and label() calls read."""
    if predicate is None or not predicate.strip():
        return []
    from mixline.store.classifiers import lookup

    tree = _parse(store.con, _PREFIX + predicate)
    out: list[str] = []
    for node in _walk(tree.get("statements")):
        if node.get("class") == "FUNCTION" and node.get("function_name", "").lower() in CLASSIFIER_FUNCTIONS:
            cid = lookup(store, _classifier_call(node, predicate)[1])["classifier_id"]
            if cid not in out:
                out.append(cid)
    return out


def _classifier_calls(store: Store, node: Any, predicate: str) -> Any:
    """The tree with each score()/label() call replaced by a correlated read of classifier_scores."""
    if isinstance(node, list):
        return [_classifier_calls(store, v, predicate) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class") == "FUNCTION" and node.get("function_name", "").lower() in CLASSIFIER_FUNCTIONS:
        from mixline.store.classifiers import lookup

        fn, ref, label = _classifier_call(node, predicate)
        try:
            c = lookup(store, ref)
        except MixlineError as exc:
            raise PredicateError(f"--where {predicate!r}: {exc}") from None
        labels = json.loads(c["labels"])
        binary = labels == ["negative", "positive"]
        if label is not None and label not in labels:
            raise PredicateError(f"--where {predicate!r}: classifier {c['name']}@v{c['version']} has no label {label!r}; "
                                 f"its labels are {', '.join(labels)}")
        rows = f"FROM classifier_scores cs WHERE cs.classifier_id = '{c['classifier_id']}' AND cs.sample_id = samples.sample_id"
        if fn == "label":
            sql = (f"(SELECT CASE WHEN any_value(cs.score) IS NULL THEN NULL WHEN any_value(cs.score) >= 0.5 "
                   f"THEN 'positive' ELSE 'negative' END {rows})") if binary else f"(SELECT arg_max(cs.label, cs.score) {rows})"
        elif binary:
            sql = f"(SELECT {'1 - ' if label == 'negative' else ''}any_value(cs.score) {rows})"
        elif label is None:
            sql = f"(SELECT max(cs.score) {rows})"
        else:
            sql = f"(SELECT any_value(cs.score) {rows} AND cs.label = '{label.replace(chr(39), chr(39) * 2)}')"
        tree = _parse(store.con, _PREFIX + sql)
        return tree["statements"][0]["node"]["where_clause"]
    return {k: _classifier_calls(store, v, predicate) for k, v in node.items()}


def scope(store: Store, predicate: str | None, alias: str = "s") -> str:
    """A condition on `alias.sample_id` that selects the predicate's samples as a semi-join.

    The user's expression is evaluated in its own SELECT over `samples`, so whatever it
    says, it can only narrow which ids the caller's guarded query considers.
    """
    expr = validate_where(store, predicate)
    if expr == "TRUE":
        return "TRUE"
    return f"{alias}.sample_id IN (SELECT sample_id FROM samples WHERE {expr})"


def check_query(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse what `mixline sql` must not run: anything but SELECT, hidden tables, file readers."""
    tree = _parse(con, query)
    if tree.get("error"):
        msg = str(tree.get("error_message"))
        if "Only SELECT" in msg:
            raise ReadOnlyError("mixline sql is read-only and runs SELECT queries only; COPY, ATTACH, INSTALL, LOAD, SET, "
                                "PRAGMA and writes are refused. Export a mix with `mixline mix export`")
        raise ReadOnlyError(f"query does not parse: {msg}")
    for node in _walk(tree.get("statements")):
        kind = node.get("type")
        if kind == "BASE_TABLE" and str(node.get("catalog_name") or "").lower() not in ("", "memory") or \
                kind == "BASE_TABLE" and str(node.get("schema_name") or "").lower() == _RAW:
            raise ReadOnlyError(f"mixline sql reads the store through its views; name tables without a catalog "
                                f"({node.get('table_name')}, not {node.get('catalog_name') or node.get('schema_name')}."
                                f"{node.get('table_name')})")
        if kind == "BASE_TABLE" and any(ch in str(node.get("table_name", "")) for ch in "/\\.:"):
            raise ReadOnlyError(f"mixline sql reads the store's tables and views, not files ({node.get('table_name')})")
        if kind == "BASE_TABLE" and node.get("table_name", "").lower() in HIDDEN_TABLES:
            raise ReadOnlyError(f"table {node['table_name']} is hidden: it holds the store's PII key and canary "
                                "secrets, which never leave the store")
        if kind == "TABLE_FUNCTION":
            name = str(node.get("function", {}).get("function_name", "")).lower()
            if name not in SQL_TABLE_FUNCTIONS:
                raise ReadOnlyError(f"table function {name}() is refused in mixline sql; query the store's "
                                    f"tables and views, or one of {', '.join(sorted(SQL_TABLE_FUNCTIONS))}")
        if node.get("class") == "FUNCTION" and str(node.get("function_name", "")).lower() in ("query", "query_table"):
            raise ReadOnlyError(f"function {node['function_name']}() is refused in mixline sql")


_RAW = "mixline_store"
# Text `mixline sql` never shows: raw parents that PII scrubbing replaced with a scrubbed
# child, and samples the pii step dropped for what they hold (a secret in a conversation).
# Their text, messages and origin fields read as withheld. (Text no pii step has scanned yet is
# shown, as it is what the user's own input files hold; `trace` withholds it.)
_UNSEEN = (f"(EXISTS (SELECT 1 FROM {_RAW}.edges e WHERE e.parent_id = s.sample_id AND e.relation = 'scrubbed_from') "
           f"OR EXISTS (SELECT 1 FROM {_RAW}.decisions d WHERE d.sample_id = s.sample_id AND d.verdict = 'dropped' "
           "AND d.reason LIKE 'pii_drop:%'))")
# Canary copies and what derives from them hold a planted secret, which never leaves the store.
_CANARY = (f"(EXISTS (SELECT 1 FROM {_RAW}.canary_copies c WHERE c.sample_id = s.sample_id) "
           f"OR EXISTS (SELECT 1 FROM {_RAW}.edges e JOIN {_RAW}.canary_copies c ON c.sample_id = e.parent_id "
           "WHERE e.child_id = s.sample_id))")
_CANARY_WITHHELD = "'[withheld: a canary copy; its planted secret never leaves the store]'"
_WITHHELD = ("'[withheld: raw text that PII scrubbing replaced or dropped; read its scrubbed child, "
             "or `mixline trace ID --scan-pii`]'")


def open_sql_connection(path: str) -> duckdb.DuckDBPyConnection:
    """A connection that reads the store through views and cannot touch files, install
    extensions or change its settings.

    The store is attached read-only; every table and view of it is a view here, but the one
    that holds the PII key. In `samples` and `sample_origins`, a raw parent that a pii step
    replaced with a scrubbed child reads as withheld: raw PII never leaves the store.
    """
    if path == ":memory:":
        raise ReadOnlyError("mixline sql needs a store file; give --store PATH")
    from mixline.store import lake
    from mixline.store.store import is_lock_error, snapshot_info, snapshot_path

    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    con.execute("SET enable_progress_bar = false")  # stdout carries the result
    allowed: list[str] = []
    try:
        def attach(file: Path) -> None:
            quoted = "'" + str(file.resolve()).replace("'", "''") + "'"  # ATTACH takes no bound parameter
            con.execute(f"ATTACH {quoted} AS {_RAW} (READ_ONLY)")

        if lake.is_lake(path):
            # A DuckLake store: its rows are Parquet files under the data path, which stays
            # readable to the lake alone (check_query refuses file names and file readers).
            lake.attach(con, lake.parse(path), read_only=True, alias=_RAW)
            con.execute("USE memory")
            row = con.execute(f"SELECT value FROM ducklake_options('{_RAW}') WHERE option_name = 'data_path'").fetchone()
            if row and row[0] and "://" not in str(row[0]):
                allowed.append(str(row[0]))
        else:
            try:
                attach(Path(path))
            except duckdb.IOException as exc:
                if not (is_lock_error(exc) and snapshot_info(path)):
                    raise
                attach(snapshot_path(path))  # a writer holds the store: read its newest snapshot
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? UNION "
            "SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal", [_RAW, _RAW]).fetchall()]
        for name in names:
            if name.lower() in HIDDEN_TABLES:
                continue
            if name == "samples":
                cols = [r[0] for r in con.execute(f"DESCRIBE {_RAW}.samples").fetchall()]
                canary = (f"WHEN {_CANARY} THEN {_CANARY_WITHHELD} " if "canary_copies" in {n.lower() for n in names}
                          else "")
                # Withheld messages read as NULL: the column is JSON, and the reason is in `text`.
                shown = ", ".join(f"CASE WHEN {_UNSEEN} THEN {_WITHHELD} {canary}ELSE s.{c} END AS {c}" if c == "text"
                                  else (f"CASE WHEN {_UNSEEN} THEN NULL {canary.replace(_CANARY_WITHHELD, 'NULL')}"
                                        f"ELSE s.{c} END AS {c}") if c == "messages" else f"s.{c}" for c in cols)
                con.execute(f"CREATE VIEW samples AS SELECT {shown} FROM {_RAW}.samples s")
            elif name == "sample_origins":
                cols = [r[0] for r in con.execute(f"DESCRIBE {_RAW}.sample_origins").fetchall()]
                shown = ", ".join(f"CASE WHEN {_UNSEEN} THEN NULL ELSE o.{c} END AS {c}" if c == "meta" else f"o.{c}"
                                  for c in cols)
                con.execute(f"CREATE VIEW sample_origins AS SELECT {shown} FROM {_RAW}.sample_origins o "
                            f"JOIN {_RAW}.samples s USING (sample_id)")
            else:
                con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {_RAW}."{name}"')
        if allowed:
            con.execute("SET allowed_directories = ?", [allowed])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def run_user_query(path: str, query: str) -> list[dict[str, Any]]:
    """`mixline sql`: one checked SELECT on a connection that can read the store and nothing else."""
    from mixline.store.lake import is_lake

    if path != ":memory:" and not is_lake(path) and not Path(path).exists():
        raise NotFoundError(f"store {path} does not exist; create it with `mixline --store {path} init`")
    try:
        con = open_sql_connection(path)
    except duckdb.IOException as exc:
        raise ReadOnlyError(f"cannot open store {path} read-only: {_first_line(exc)}") from exc
    try:
        check_query(con, query)
        cur = con.execute(query)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    except duckdb.PermissionException as exc:
        raise ReadOnlyError(f"mixline sql cannot touch files or extensions: {_first_line(exc)}") from exc
    except duckdb.Error as exc:
        raise MixlineError(f"query failed: {_first_line(exc)}") from exc
    finally:
        con.close()


def _no_child(alias: str, relations: str) -> str:
    """The sample is no edge's parent by these relations (found by the indexed parent key)."""
    return (f"NOT EXISTS (SELECT 1 FROM edges e WHERE e.parent_key = ('0x' || substr({alias}.sample_id, 1, 16))::UBIGINT "
            f"AND e.parent_id = {alias}.sample_id AND e.relation IN ({relations}))")


def not_raw_parent(alias: str = "s") -> str:
    """A guard: the sample has no scrubbed child, so it is not raw text that PII scrubbing replaced,
    and no canary copy, so it is not a carrier whose place its canary copies took."""
    return _no_child(alias, "'scrubbed_from', 'canary_of'")


def not_canary_carrier(alias: str = "s") -> str:
    """A guard for curation: the sample is not a canary's carrier. Planting a canary into a sample
    swaps the sample for its canary copies (as if its author had written the secret), so the
    carrier is neither curated nor a dedup anchor that its own copies would near-duplicate."""
    return _no_child(alias, "'canary_of'")
