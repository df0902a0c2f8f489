"""The scan's collector table: each collector of `soc.core.collectors` with how it is driven and judged.

Adding a collector is one row here (and one in the core table): no name lists or isinstance chains
elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checks import CheckContext, evaluate_tls
from checks.http import evaluate_http
from checks.ports import evaluate_ports
from checks.trustlabel import evaluate_label
from soc.core.collectors import COLLECTORS, SCAN_COLLECTORS, CollectorKind
from soc.core.errors import InputError
from soc.core.models import Finding
from soc.inventory import Inventory, Portal
from soc.scan.runners import Runner, expected_ports, risky_ports, run_http, run_ports, run_tls

Evaluator = Callable[[Any, Portal, Inventory], list[Finding]]
"""(typed observation, its portal, the inventory) → findings."""


@dataclass(frozen=True)
class ScanCollector:
    """One collector of a portal scan."""

    kind: CollectorKind
    run: Runner
    evaluate: Evaluator

    @property
    def name(self) -> str:
        """The collector's name (its observations' `collector`)."""
        return self.kind.name


def _tls(obs: Any, _portal: Portal, inventory: Inventory) -> list[Finding]:
    return evaluate_tls(obs, CheckContext(expiry_warning_days=inventory.settings.expiry_warning_days))


def _ports(obs: Any, portal: Portal, inventory: Inventory) -> list[Finding]:
    return evaluate_ports(obs, expected_ports(portal), risky_ports(inventory))


_RUNNERS: dict[str, Runner] = {"tls": run_tls, "http": run_http, "ports": run_ports}
_EVALUATORS: dict[str, Evaluator] = {
    "tls": _tls,
    "http": lambda obs, _portal, _inventory: evaluate_http(obs),
    "label": lambda obs, _portal, _inventory: evaluate_label(obs),
    "ports": _ports,
}

SCAN_TABLE: dict[str, ScanCollector] = {
    name: ScanCollector(COLLECTORS[name], _RUNNERS[COLLECTORS[name].runner or ""], _EVALUATORS[name])
    for name in SCAN_COLLECTORS
}


def runners_for(only: tuple[str, ...]) -> dict[str, Runner]:
    """The runners the selected collectors need, by runner name (one HTTP runner serves http and label)."""
    return {COLLECTORS[name].runner or "": SCAN_TABLE[name].run for name in only}


def covered_by(runner: str, only: tuple[str, ...]) -> list[str]:
    """The selected collectors a runner speaks for."""
    return [name for name in only if COLLECTORS[name].runner == runner]


def parse_only(text: str | None) -> tuple[str, ...]:
    """'tls,http' → ('tls', 'http'); None or '' → every collector. InputError names an unknown one."""
    if not text:
        return SCAN_COLLECTORS
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCAN_COLLECTORS]
    if unknown:
        raise InputError(f"--only: unknown collector {unknown[0]!r} (choose from {', '.join(SCAN_COLLECTORS)})")
    return tuple(n for n in SCAN_COLLECTORS if n in names)
