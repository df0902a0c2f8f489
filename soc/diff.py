"""Changes between two scan runs: what is new, what is still open, what is no longer seen."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from soc.models import StoredFinding
from soc.store.base import Store


class RunDiff(BaseModel):
    """Findings of run B compared with run A (the portals B did not scan are left out of `resolved`)."""

    run_a: str
    run_b: str
    new: list[StoredFinding] = Field(default_factory=list)
    still_open: list[StoredFinding] = Field(default_factory=list)
    resolved: list[StoredFinding] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """new / still_open / resolved counts."""
        return {"new": len(self.new), "still_open": len(self.still_open), "resolved": len(self.resolved)}

    def to_json(self) -> dict[str, Any]:
        """Stable JSON shape: schema, runs, counts and the three lists."""
        return {"schema": "soc.diff/1", **self.model_dump(mode="json"), "counts": self.counts()}


def find_run(store: Store, prefix: str) -> str:
    """A run id from a unique prefix (as `soc runs` shows them); ValueError otherwise."""
    matches = [run.id for run in store.list_runs(limit=10_000) if run.id.startswith(prefix)]
    if len(matches) != 1:
        raise ValueError(f"run {prefix!r}: {'no run' if not matches else f'{len(matches)} runs'} with this id")
    return matches[0]


def diff_runs(store: Store, run_a: str, run_b: str) -> RunDiff:
    """Compare the findings seen in two runs."""
    seen_a = {f.fingerprint: f for f in store.run_findings(run_a)}
    seen_b = {f.fingerprint: f for f in store.run_findings(run_b)}
    scanned_b = {scan.portal_url for scan in store.portal_scans(run_b)}
    return RunDiff(
        run_a=run_a,
        run_b=run_b,
        new=[f for fp, f in seen_b.items() if fp not in seen_a],
        still_open=[f for fp, f in seen_b.items() if fp in seen_a],
        resolved=[f for fp, f in seen_a.items() if fp not in seen_b and f.portal_url in scanned_b],
    )
