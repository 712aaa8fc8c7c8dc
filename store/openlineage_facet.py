"""mixline's OpenLineage run facet, in a module of its own: importing the openlineage client
takes about 0.25 s, which only a run that emits events should pay."""

from __future__ import annotations

from typing import Any

import attr

_FACET_SCHEMA = "https://github.com/mixline/mixline/blob/main/store/openlineage_facet.py#MixlineRunFacet"

try:
    from openlineage.client.facet_v2 import RunFacet as _RunFacet
except ImportError:  # the client is an optional dependency of the events, not of mixline
    _RunFacet = object  # type: ignore[assignment,misc]


@attr.define
class MixlineRunFacet(_RunFacet):  # type: ignore[misc,valid-type]
    """mixline's own facet: the row-level lineage stays in the store, at `store`, under `runId`."""

    runId: str  # noqa: N815 - OpenLineage's field style
    kind: str
    configHash: str  # noqa: N815
    store: str
    stats: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return _FACET_SCHEMA
