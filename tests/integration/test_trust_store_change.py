"""A trust store that becomes unusable between the inventory check and the scan, against the portal lab.

The inventory is loaded (the store is valid then), the store is overwritten with garbage, and the scan
goes on: TLS is still assessed, but the observation names the store, is incomplete and resolves nothing,
and a chain that only the lost store anchors gets no `tls.cert.untrusted`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from soc.core.observations import TlsObservation
from soc.inventory import Inventory, load_inventory
from soc.lab import PortalLab
from soc.services.context import ServiceContext
from soc.services.scans import scan_portals

pytestmark = pytest.mark.lab  # scans the portal lab on loopback


def lab_inventory(lab: PortalLab, tmp_path: Path, store: Path, address_of: dict[str, str]) -> Inventory:
    """The lab inventory with its trust store at `store` and some portals moved to another case's address."""
    data = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    data["settings"]["trust_stores"] = [str(store)]
    for portal in data["portals"]:
        for name, other in address_of.items():
            if portal["url"] == lab.case(name).url:
                portal["address"] = lab.case(other).address
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_inventory(path)


def statuses(context: ServiceContext, url: str) -> dict[str, str]:
    rows = sqlite3.connect(context.settings.db).execute(
        "SELECT check_id, status FROM findings WHERE portal_url = ?", (url,))
    return dict(rows.fetchall())


def test_a_store_gone_bad_after_the_check_gives_incomplete_tls_that_resolves_nothing(
    lab: PortalLab, context: ServiceContext, tmp_path: Path
) -> None:
    store = tmp_path / "anchors.pem"
    store.write_bytes(lab.trust_store_path.read_bytes())
    expired, good = lab.case("expired"), lab.case("good")
    inventory = lab_inventory(lab, tmp_path, store, {})
    portals = {p.url: p for p in inventory.portals}
    scan_portals(context, inventory, "lab", [portals[expired.url]], ("tls",))
    assert statuses(context, expired.url) == {"tls.cert.expired": "open"}

    # The expired portal now answers with the good server (its certificate no longer expired, but for
    # another name); the store is overwritten after the inventory was checked.
    inventory = lab_inventory(lab, tmp_path, store, {"expired": "good"})
    portals = {p.url: p for p in inventory.portals}
    store.write_bytes(b"overwritten by a careless copy\n")
    report = scan_portals(context, inventory, "lab", [portals[expired.url], portals[good.url]], ("tls",))

    assert report.run.status.value == "complete"
    results = {result.portal.url: result for result in report.portals}
    for url in (expired.url, good.url):
        obs = results[url].typed["tls"]
        assert isinstance(obs, TlsObservation) and obs.protocols.get("TLSv1.3") is True  # TLS was assessed
        assert str(store) in obs.command_errors["trust_stores"] and not obs.complete
        assert obs.trust is None  # only the lost store anchors the lab chain: "untrusted" is not known
        assert results[url].assessment.collectors == {"tls": False}
    assert {f.check_id for f in results[expired.url].findings} == {"tls.cert.hostname_mismatch"}
    assert results[good.url].findings == []
    # The incomplete observation resolved nothing: the expired finding stays open.
    assert statuses(context, expired.url) == {"tls.cert.expired": "open", "tls.cert.hostname_mismatch": "open"}
