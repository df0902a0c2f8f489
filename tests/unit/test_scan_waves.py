"""The scan engine's start offsets (how the scheduler spreads a nightly scan): per address, in waves."""

from __future__ import annotations

import time
from pathlib import Path

from soc.core.clock import FixedClock
from soc.core.settings import Settings
from soc.inventory import parse_inventory
from soc.scan.job import ScanJob
from tests.conftest import NOW


def job(start_after: dict[str, float]) -> ScanJob:
    inventory = parse_inventory({
        "agencies": [{"id": "stp", "name": "Sở Tư pháp"}],
        "portals": [{"url": "https://a.dongnai.gov.vn/", "agency": "stp", "address": "10.0.0.1"},
                    {"url": "https://b.dongnai.gov.vn/", "agency": "stp", "address": "10.0.0.1"},
                    {"url": "https://c.dongnai.gov.vn/", "agency": "stp", "address": "10.0.0.2"}],
        "settings": {"allowed_networks": ["10.0.0.0/8"]},
    }, "test", Path("."))
    return ScanJob(inventory, Settings(), {p.url: p for p in inventory.portals}, ("tls",), FixedClock(NOW),
                   start_after=start_after)


def test_portals_on_one_address_start_together_at_the_earliest_of_their_offsets() -> None:
    scan = job({"https://a.dongnai.gov.vn/": 30.0, "https://b.dongnai.gov.vn/": 10.0,
                "https://c.dongnai.gov.vn/": 20.0})
    assert scan.start_offset("https://a.dongnai.gov.vn/") == 10.0  # shares 10.0.0.1 with b
    assert scan.waves(scan.portals) == [(10.0, ["https://a.dongnai.gov.vn/", "https://b.dongnai.gov.vn/"]),
                                        (20.0, ["https://c.dongnai.gov.vn/"])]


def test_without_offsets_everything_is_one_wave_at_once() -> None:
    scan = job({})
    assert scan.waves(scan.portals) == [(0.0, list(scan.portals))]
    assert scan.wait_until(0.0)


def test_waiting_for_a_turn_ends_at_once_when_the_scan_is_cancelled() -> None:
    scan = job({"https://c.dongnai.gov.vn/": 60.0})
    scan.cancelled.set()
    began = time.monotonic()
    assert not scan.wait_until(scan.start_offset("https://c.dongnai.gov.vn/"))
    assert time.monotonic() - began < 1
