"""OpenLineage events for every run: START, then COMPLETE or FAIL.

Runs are the jobs (namespace `mixline`, name = the run's step); what a run read and wrote are
its input and output datasets (source files, the store, mixes, exports, models); a run
started inside another has a parent facet. A `mixline` run facet carries the config hash, the
run's counts (per verdict and drop reason, synthetic share where the run has them) and a
pointer to the row-level lineage, which stays in the store: the store's path and the run id.

Nothing is sent by default. `MIXLINE_OPENLINEAGE_URL` (or `url` in an `[openlineage]` table of
`mixline.toml` in the working folder) turns it on: an `http(s)://` URL posts each event to its
`/api/v1/lineage` (Marquez and others), a `file://` URL or a path appends one JSON event per
line. A lineage backend that is down never fails a run: the error is logged and the run goes on.
"""

from __future__ import annotations

import logging
import os
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("mixline.openlineage")
NAMESPACE = "mixline"
PRODUCER = "https://github.com/mixline/mixline"


def configured_url() -> str | None:
    url = os.environ.get("MIXLINE_OPENLINEAGE_URL")
    if url:
        return url
    cfg = Path("mixline.toml")
    if cfg.is_file():
        try:
            table = tomllib.loads(cfg.read_text()).get("openlineage") or {}
        except (OSError, tomllib.TOMLDecodeError):
            return None
        value = table.get("url")
        return str(value) if value else None
    return None


def run_uuid(run_id: str) -> str:
    """OpenLineage wants a UUID: one derived from mixline's run id, the same every time."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mixline:run:{run_id}"))


class Emitter:
    """Sends a run's events through the openlineage-python client's file or HTTP transport."""

    def __init__(self, url: str) -> None:
        from openlineage.client import OpenLineageClient

        if url.startswith(("http://", "https://")):
            from openlineage.client.transport.http import HttpConfig, HttpTransport

            transport: Any = HttpTransport(HttpConfig(url=url, timeout=5.0, retry={"total": 1}))
        else:
            from openlineage.client.transport.file import FileConfig, FileTransport

            transport = FileTransport(FileConfig(log_file_path=url.removeprefix("file://"), append=True))
        self.client = OpenLineageClient(transport=transport)

    def emit(self, state: str, *, run_id: str, step: str, kind: str, store_path: str, config: dict[str, Any],
             config_hash: str, stats: dict[str, Any] | None = None, parent_run_id: str | None = None,
             error: str | None = None) -> None:
        from mixline.store.openlineage_facet import MixlineRunFacet
        from openlineage.client.event_v2 import (
            InputDataset,
            Job,
            OutputDataset,
            Run,
            RunEvent,
            RunState,
        )
        from openlineage.client.facet_v2 import error_message_run, parent_run

        facets: dict[str, Any] = {"mixline": MixlineRunFacet(runId=run_id, kind=kind, configHash=config_hash,
                                                              store=store_path, stats=stats or {})}
        if parent_run_id:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run_uuid(parent_run_id)), job=parent_run.Job(namespace=NAMESPACE, name=kind))
        if error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="python")
        inputs, outputs = datasets(kind, store_path, config, stats or {})
        event = RunEvent(
            eventType=getattr(RunState, state), eventTime=datetime.now(UTC).isoformat(), producer=PRODUCER,
            run=Run(runId=run_uuid(run_id), facets=facets), job=Job(namespace=NAMESPACE, name=step),
            inputs=[InputDataset(namespace=ns, name=name) for ns, name in inputs],
            outputs=[OutputDataset(namespace=ns, name=name) for ns, name in outputs])
        try:
            self.client.emit(event)
        except Exception as exc:  # a lineage backend that is down must not fail the run
            log.warning("OpenLineage event not sent (%s: %s)", type(exc).__name__, exc)


def datasets(kind: str, store_path: str, config: dict[str, Any],
             stats: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(inputs, outputs) as (namespace, name): files, the store's tables, mixes, exports, models."""
    from mixline.store.lake import is_lake, redact_url

    store = (f"ducklake:{redact_url(store_path)}" if is_lake(store_path)
             else f"duckdb://{Path(store_path).resolve()}" if store_path != ":memory:" else "duckdb://memory")
    mix = config.get("mix_id") or stats.get("mix_id")
    model = stats.get("model_id") or config.get("model_id")
    if kind == "ingest":
        return [("file", str(p)) for p in config.get("paths", [])], [(store, "samples")]
    if kind == "curate":
        return [(store, "samples")], [(store, "decisions"), (store, "samples")]
    if kind == "mix":
        return [(store, "samples")], [(f"{store}#mixes", str(mix or config.get("name", "mix")))]
    if kind == "export":
        return [(f"{store}#mixes", str(mix))], [("file", str(config.get("out", "")))]
    if kind in ("model", "train"):
        return ([(f"{store}#mixes", str(mix))] if mix else []), [(f"{store}#models", str(model or "model"))]
    if kind in ("eval", "generate"):
        return [(f"{store}#models", str(model or config.get("model_id", "model")))], [(store, "samples" if kind == "generate" else "evals")]
    return [(store, "samples")], [(store, kind)]
