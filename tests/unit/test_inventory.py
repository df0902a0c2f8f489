"""Inventory loading: the documented shape, clear messages naming file/entry/field, CSV import all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
import yaml
from typer.testing import CliRunner

from soc.cli import app
from soc.inventory import InventoryError, load_inventory, merge_portals_csv, normalise_portal_url

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """\
agencies:
  - id: stttt
    name: Sở Thông tin và Truyền thông
portals:
  - url: https://stttt.dongnai.gov.vn/
    agency: stttt
    address: 127.0.10.1
settings:
  trust_stores: [{root}]
  allowed_networks: ["127.0.0.0/8"]
"""


@pytest.fixture
def root_pem(tmp_path: Path) -> Path:
    path = tmp_path / "extra-root.pem"
    trustme.CA().cert_pem.write_to_path(str(path))  # a real CA certificate, made now: a trust store must parse
    return path


def write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return caught.value.problems


def test_minimal_documented_shape_loads(tmp_path: Path, root_pem: Path) -> None:
    inventory = load_inventory(write(tmp_path, MINIMAL.format(root=root_pem)))
    portal = inventory.portals[0]
    assert (portal.host, portal.port, str(portal.address)) == ("stttt.dongnai.gov.vn", 443, "127.0.10.1")
    assert inventory.settings.trust_stores == [root_pem]
    assert inventory.settings.expiry_warning_days == 30


def test_relative_trust_store_is_resolved_against_the_inventory(tmp_path: Path, root_pem: Path) -> None:
    inventory = load_inventory(write(tmp_path, MINIMAL.format(root=root_pem.name)))
    assert inventory.settings.trust_stores == [root_pem.resolve()]


def test_example_inventory_of_the_province_is_valid() -> None:
    inventory = load_inventory(REPO / "examples" / "dongnai.yaml")
    hosts = {p.host for p in inventory.portals}
    assert {"www.dongnai.gov.vn", "dichvucong.dongnai.gov.vn", "skhcn.dongnai.gov.vn", "congan.dongnai.gov.vn",
            "hdnd.dongnai.gov.vn", "thanhtra.dongnai.gov.vn", "sonongnghiep.dongnai.gov.vn"} <= hosts
    assert all(h.endswith(".dongnai.gov.vn") for h in hosts)
    assert all(p.address is None for p in inventory.portals)  # real portals: resolved by DNS when scanned for real


def test_every_problem_is_named_by_file_entry_and_field(tmp_path: Path) -> None:
    text = """\
agencies:
  - {id: a, name: A}
  - {id: a, name: duplicate}
portals:
  - {url: https://ok.gov.vn/, agency: a}
  - {url: https://ok2.gov.vn/, agency: a}
  - {url: https://ok3.gov.vn/, agency: a}
  - {url: "ftp://bad.gov.vn/", agency: a}
  - {url: https://x.gov.vn/, agency: nobody}
  - {url: https://y.gov.vn/, agency: a, address: not-an-ip, adress: typo}
  - {url: https://y.gov.vn:99999/, agency: a}
settings:
  expiry_warning_days: 0
"""
    problems = problems_of(write(tmp_path, text))
    assert "inventory.yaml: portals[3].url: not a valid https URL (expected https://host[:port]/path)" in problems
    assert any(p.startswith("inventory.yaml: portals[5].address:") for p in problems)
    assert any(p.startswith("inventory.yaml: portals[5].adress: Extra inputs are not permitted") for p in problems)
    assert any(p.startswith("inventory.yaml: portals[6].url: not a valid https URL") for p in problems)
    assert any(p.startswith("inventory.yaml: settings.expiry_warning_days:") for p in problems)


def test_cross_references_and_duplicates_are_reported(tmp_path: Path) -> None:
    text = """\
agencies: [{id: a, name: A}, {id: a, name: B}]
portals:
  - {url: https://x.gov.vn/, agency: nobody}
  - {url: https://X.gov.vn:443/, agency: a}
"""
    problems = problems_of(write(tmp_path, text))
    assert "inventory.yaml: agencies[1].id: duplicate of agencies[0] (a)" in problems
    assert "inventory.yaml: portals[1].url: duplicate of portals[0] (https://x.gov.vn/)" in problems
    assert "inventory.yaml: portals[0].agency: unknown agency 'nobody'" in problems


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("agencies: [\n", "inventory.yaml: line 2: not valid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("settings:\n  trust_stores: [missing.pem]\n", "settings.trust_stores[0]: file not found"),
    ],
)
def test_unusable_files_get_a_clear_message(tmp_path: Path, text: str, fragment: str) -> None:
    assert any(fragment in p for p in problems_of(write(tmp_path, text)))


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://WWW.DongNai.gov.vn", "https://www.dongnai.gov.vn/"),
        ("https://www.dongnai.gov.vn:443/portal", "https://www.dongnai.gov.vn/portal"),
        ("https://lab.soc.test:8443/", "https://lab.soc.test:8443/"),
        ("https://đồngnai.vn/", "https://xn--ngnai-4ya0444c.vn/"),
    ],
)
def test_portal_urls_are_normalised(url: str, canonical: str) -> None:
    assert normalise_portal_url(url) == canonical


# A public address: a CSV of portals carries no allowed_networks (nothing here is ever contacted).
CSV_OK = """url,agency,agency_name,address,expected_ports,name
https://skhcn.dongnai.gov.vn/,skhcn,Sở Khoa học và Công nghệ,14.160.0.5,443;80,Cổng Sở KH&CN

https://stp.dongnai.gov.vn/,stp,Sở Tư pháp,,,
"""


def test_csv_of_portals_loads_as_an_inventory(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, CSV_OK, "portals.csv"))
    assert [p.url for p in inventory.portals] == ["https://skhcn.dongnai.gov.vn/", "https://stp.dongnai.gov.vn/"]
    assert inventory.portals[0].expected_ports == [443, 80]
    assert inventory.agency("skhcn").name == "Sở Khoa học và Công nghệ"


def test_csv_errors_name_the_row_as_a_spreadsheet_shows_it(tmp_path: Path) -> None:
    text = CSV_OK + "http://plain.gov.vn/,stp,,,,\nhttps://ok.gov.vn/,stp,,,22x,\n"
    problems = problems_of(write(tmp_path, text, "portals.csv"))
    assert problems == [
        "portals.csv: row 5: expected_ports: not a port number: '22x'",
        "portals.csv: row 4: url: not a valid https URL (expected https://host[:port]/path)",
    ]


def test_csv_with_a_missing_column_is_refused(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "address,name\n1.2.3.4,x\n", "portals.csv"))
    assert "portals.csv: header: missing column 'url'" in problems


def test_csv_merge_is_all_or_nothing(tmp_path: Path, root_pem: Path) -> None:
    target = write(tmp_path, MINIMAL.format(root=root_pem))
    before = target.read_text(encoding="utf-8")
    bad = write(tmp_path, CSV_OK + "https://bad.gov.vn/,unknown agency id!,,,,\n", "bad.csv")
    with pytest.raises(InventoryError):
        merge_portals_csv(bad, target)
    assert target.read_text(encoding="utf-8") == before
    assert list(tmp_path.glob(".inventory.yaml.*")) == []

    added, updated = merge_portals_csv(write(tmp_path, CSV_OK, "ok.csv"), target)
    assert (added, updated) == (2, 0)
    merged = load_inventory(target)
    assert len(merged.portals) == 3 and {a.id for a in merged.agencies} == {"stttt", "skhcn", "stp"}
    assert merge_portals_csv(tmp_path / "ok.csv", target) == (0, 2)
    assert yaml.safe_load(target.read_text(encoding="utf-8"))["portals"][1]["address"] == "14.160.0.5"


def test_cli_rejects_a_bad_inventory_with_exit_code_2(tmp_path: Path) -> None:
    path = write(tmp_path, "portals:\n  - {url: 'http://x.gov.vn/', agency: a}\n")
    result = CliRunner().invoke(app, ["scan", "--inventory", str(path), "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert "portals[0].url: not a valid https URL" in result.output
    assert not (tmp_path / "s.db").exists()


def test_cli_inventory_check_reports_counts() -> None:
    result = CliRunner().invoke(app, ["inventory", "check", str(REPO / "examples" / "dongnai.yaml")])
    assert result.exit_code == 0, result.output
    assert "14 cổng / portals" in result.output
