"""`mixline doctor`: the store's invariants, checked with one query each.

Every check counts rows that break a rule the writers keep: lineage that points at samples
that do not exist, rows written by runs that never committed, mix members without their mix.
A healthy store has zero everywhere. A run left 'running' is one whose process died; the next
writer marks it 'aborted' (its writes were rolled back with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixline.store.store import Store

# name -> (what it means, SQL counting the rows that break it)
CHECKS: dict[str, tuple[str, str]] = {
    "orphan_edges": ("edges whose parent or child is not a sample",
                     "SELECT count(*) FROM edges e WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = e.child_id) "
                     "OR NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = e.parent_id)"),
    "edges_without_run": ("edges written by no committed run",
                          "SELECT count(*) FROM edges e WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = e.run_id AND r.status = 'ok')"),
    "decisions_without_run": ("decisions whose run did not commit",
                              "SELECT count(*) FROM decisions d WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = d.run_id AND r.status = 'ok')"),
    "decisions_without_sample": ("decisions about samples that do not exist",
                                 "SELECT count(*) FROM decisions d WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = d.sample_id)"),
    "origins_without_sample": ("origins of samples that do not exist",
                               "SELECT count(*) FROM sample_origins o WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = o.sample_id)"),
    "samples_without_origin_or_parent": ("samples with neither an origin nor a parent edge nor a generation",
                                         "SELECT count(*) FROM sample_rows s WHERE NOT EXISTS (SELECT 1 FROM sample_origins o WHERE o.sample_id = s.sample_id) "
                                         "AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.child_id = s.sample_id) "
                                         "AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.sample_id = s.sample_id)"),
    "annotations_without_sample": ("annotations (language, token counts) of samples that do not exist",
                                   "SELECT count(*) FROM sample_annotations a WHERE NOT EXISTS "
                                   "(SELECT 1 FROM sample_rows s WHERE s.sample_id = a.sample_id)"),
    "annotations_without_run": ("annotations written by no committed run",
                                "SELECT count(*) FROM sample_annotations a WHERE NOT EXISTS "
                                "(SELECT 1 FROM runs r WHERE r.run_id = a.run_id AND r.status = 'ok')"),
    "members_without_mix": ("mix members of mixes that do not exist",
                            "SELECT count(*) FROM mix_members m WHERE NOT EXISTS (SELECT 1 FROM mixes x WHERE x.mix_id = m.mix_id)"),
    "members_without_sample": ("mix members that are not samples",
                               "SELECT count(*) FROM mix_members m WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = m.sample_id)"),
    "mixes_without_run": ("mixes whose build did not commit",
                          "SELECT count(*) FROM mixes x WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = x.run_id AND r.status = 'ok')"),
    "redactions_without_sample": ("redactions of samples that do not exist",
                                  "SELECT count(*) FROM redactions d WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = d.sample_id)"),
    "clusters_without_sample": ("cluster rows of samples that do not exist",
                                "SELECT count(*) FROM clusters c WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = c.sample_id)"),
    "generations_without_model": ("generated samples whose model is not recorded",
                                  "SELECT count(*) FROM generations g WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.model_id = g.model_id)"),
    "models_without_mix": ("models trained on a mix that does not exist",
                           "SELECT count(*) FROM models m WHERE m.mix_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mixes x WHERE x.mix_id = m.mix_id)"),
    "canary_copies_without_sample": ("canary copies that are not samples",
                                     "SELECT count(*) FROM canary_copies c WHERE NOT EXISTS (SELECT 1 FROM sample_rows s WHERE s.sample_id = c.sample_id)"),
    "canaries_without_secret": ("canaries whose secret is missing from the secret table (an audit cannot rank them)",
                                "SELECT count(*) FROM canaries c WHERE NOT EXISTS (SELECT 1 FROM store_secrets k "
                                "WHERE k.name = 'canary:' || c.canary_id)"),
    "audits_without_model": ("privacy audits of models that are not recorded",
                             "SELECT count(*) FROM audits a WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.model_id = a.model_id)"),
    "runs_left_running": ("runs still running, or whose process died before committing (the next writer marks them aborted)",
                          "SELECT count(*) FROM {runs} WHERE status = 'running'"),
}


@dataclass
class DoctorReport:
    checks: dict[str, int]
    aborted_runs: int

    @property
    def healthy(self) -> bool:
        return not any(n for name, n in self.checks.items() if name != "runs_left_running")

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": self.checks, "aborted_runs": self.aborted_runs}


def doctor(store: Store) -> DoctorReport:
    """Count the rows that break each invariant, and the runs that ended 'aborted'."""
    checks = {name: int(store.scalar(sql.replace("{runs}", store.runs_sql()))) for name, (_, sql) in CHECKS.items()}
    aborted = int(store.scalar("SELECT count(*) FROM runs WHERE status = 'aborted'"))
    return DoctorReport(checks, aborted)
