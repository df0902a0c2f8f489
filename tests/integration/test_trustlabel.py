"""Tín nhiệm mạng: badge extraction, badge/host matching, the snapshot, and the registry client on loopback."""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from checks.trustlabel import badge_matches_host
from collectors.registry import RegistryError, TrustLabelRegistry, load_snapshot, parse_detail_page
from collectors.trustlabel import MAX_BADGES, MAX_PAGE_CHARS, MAX_TEXT, extract_badges
from soc.core.observations import TrustBadge
from soc.lab.registry import RegistryEntry, RegistryServer, detail_page
from soc.lab.servers import LabError

pytestmark = pytest.mark.lab  # starts real servers on loopback

PAGE = "https://www.dongnai.gov.vn/trang-chu"
HOST = "www.dongnai.gov.vn"
SLUG = "dongnaigovvn-1712345678"
LINK = f"https://tinnhiemmang.vn/danh-ba-tin-nhiem/{SLUG}"
IMG = "https://tinnhiemmang.vn/handle_cert?id=dongnai.gov.vn"
GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
HEADER = "domain,label_id,status,issued,expires\n"
Expected = tuple[str, str | None, str | None]
"""(how, image_host, slug) of one extracted badge."""
ADDRESS = "127.0.51.1"
NOW = datetime(2025, 6, 1, 3, 0, tzinfo=UTC)
TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"
"""The combining tone marks windows-1258 encodes apart from the base letter."""


def page(body: str) -> str:
    """A Vietnamese homepage around `body`."""
    return (
        "<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'><title>Cổng thông tin điện tử tỉnh Đồng Nai</title>"
        f"</head><body><h1>Ủy ban nhân dân tỉnh Đồng Nai</h1><footer>{body}</footer></body></html>"
    )


def cp1258_page(body: str) -> str:
    """A page written in windows-1258 (tone marks as combining characters) and decoded, with `body` inside."""
    text = "Cổng thông tin điện tử tỉnh Đồng Nai — Sở Thông tin và Truyền thông"
    encoded = bytearray()
    for char in text:
        try:
            encoded += char.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", char)
            tone = next(mark for mark in decomposed if mark in TONE_MARKS)
            base = unicodedata.normalize("NFC", decomposed.replace(tone, ""))
            encoded += (base + tone).encode("cp1258")
    decoded = bytes(encoded).decode("cp1258")
    assert decoded != text and unicodedata.normalize("NFC", decoded) == text
    head = f"<html><head><meta charset='windows-1258'><title>{decoded}</title></head>"
    return f"{head}<body><p>{decoded}</p>{body}</html>"


def b(how: str, image_host: str | None = "dongnai.gov.vn", slug: str | None = SLUG) -> Expected:
    """The expected (how, image_host, slug) of one badge."""
    return how, image_host, slug


def js_document_write() -> str:
    """document.write of the whole badge, quotes escaped inside a single-quoted literal."""
    markup = f'<a href=\\"{LINK}\\" target=\\"_blank\\"><img src=\\"{IMG}\\" alt=\\"Tín nhiệm mạng\\"><\\/a>'
    return f"<script type='text/javascript'>document.write('{markup}');</script>"


EXTRACTION_CASES: list[tuple[str, str, list[Expected]]] = [
    ("link+img", page(f'<a href="{LINK}" target="_blank"><img src="{IMG}" alt="Tín nhiệm mạng"></a>'), [b("link+img")]),
    (
        "reordered-single-quotes-upper-case-whitespace",
        page(f"<A\n  TARGET=_blank\tHREF = '  {LINK.upper()}\n' ><IMG ALT='x' SRC=' {IMG} '></A>"),
        [b("link+img")],
    ),
    (
        "unquoted-attributes",
        page(f"<a href={LINK}><img width=120 src={IMG}></a>"),
        [b("link+img")],
    ),
    (
        "protocol-relative",
        page(f"<a href='{LINK.removeprefix('https:')}'><img src='{IMG.removeprefix('https:')}'></a>"),
        [b("link+img")],
    ),
    (
        "www-and-http",
        page(f'<a href="http://www.tinnhiemmang.vn/danh-ba-tin-nhiem/{SLUG}/"><img src="http://WWW.TinNhiemMang.VN/handle_cert?id=DongNai.Gov.VN"></a>'),
        [b("link+img")],
    ),
    (
        "link+data-src",
        page(f'<a href="{LINK}"><img class="lazy" src="{GIF}" data-src="{IMG}"></a>'),
        [b("link+data-src")],
    ),
    (
        "link+data-lazy-src",
        page(f'<a href="{LINK}"><img src="/wp-content/blank.gif" data-lazy-src="{IMG}"></a>'),
        [b("link+data-src")],
    ),
    (
        "lazy-with-noscript-copy",
        page(f'<a href="{LINK}"><img data-src="{IMG}"><noscript><img src="{IMG}"></noscript></a>'),
        [b("link+img")],
    ),
    ("img-only", page(f'<img src="{IMG}" alt="Tín nhiệm mạng">'), [b("img", slug=None)]),
    ("data-src-only", page(f'<img data-src="{IMG}">'), [b("data-src", slug=None)]),
    (
        "img-linking-to-registry-home-is-a-lone-image",
        page(f'<a href="https://tinnhiemmang.vn/"><img src="{IMG}"></a>'),
        [b("img", slug=None)],
    ),
    (
        "self-hosted-copy",
        page(f'<a href="{LINK}"><img src="/images/tinnhiemmang.png"></a>'),
        [b("link+self-hosted", image_host=None)],
    ),
    ("script-document-write", page(js_document_write()), [b("script")]),
    (
        "script-innerHTML-concatenated",
        page(
            '<div id="tnm"></div><script>var el = document.getElementById("tnm");\n'
            f"el.innerHTML = \"<a href='{LINK}'>\" +\n  \"<img src='/images/tnm.png'></a>\";</script>"
        ),
        [b("script", image_host=None)],
    ),
    (
        "script-json-escaped",
        page(
            "<script>w.innerHTML=\"<a href=\\\"https:\\/\\/tinnhiemmang.vn\\/danh-ba-tin-nhiem\\/"
            f"{SLUG}\\\"><img src=\\\"https:\\/\\/tinnhiemmang.vn\\/handle_cert?id=dongnai.gov.vn\\\">"
            "<\\/a>\";</script>"
        ),
        [b("script")],
    ),
    (
        "script-unicode-escapes",
        page(
            "<script>document.write(`\\u003ca href=\"" + LINK + "\"\\x3e\\u003cimg data-src=\"" + IMG + "\">`)</script>"
        ),
        [b("script")],
    ),
    ("windows-1258-page", cp1258_page(f'<a href="{LINK}"><img src="{IMG}"></a>'), [b("link+img")]),
    ("no-badge", page('<a href="https://www.dongnai.gov.vn/lien-he"><img src="/logo.png"></a>'), []),
    ("text-link-only", page(f'<a href="{LINK}">Tín nhiệm mạng</a>'), []),
    ("escaped-markup-is-text", page(f"<pre>&lt;a href=\"{LINK}\"&gt;&lt;img src=\"{IMG}\"&gt;</pre>"), []),
    ("external-script-ignored", page(f'<script src="https://tinnhiemmang.vn/badge.js?id={HOST}"></script>'), []),
    ("other-host-same-path", page(f'<img src="https://tinnhiemmang.vn.evil.example/handle_cert?id={HOST}">'), []),
    ("javascript-url", page(f"<a href='javascript:void(0)'><img src='javascript:alert(1)//{IMG}'></a>"), []),
    (
        "badge-for-another-domain",
        page('<a href="https://tinnhiemmang.vn/danh-ba-tin-nhiem/topzonevn-1635823490"><img src="https://tinnhiemmang.vn/handle_cert?id=topzone.vn"></a>'),
        [b("link+img", image_host="topzone.vn", slug="topzonevn-1635823490")],
    ),
    (
        "header-and-footer-duplicates",
        page(f'<a href="{LINK}"><img src="{IMG}"></a><p>…</p><a href="{LINK}"><img src="{IMG}"></a>'),
        [b("link+img")],
    ),
    (
        "broken-markup",
        f"<html><body><div><table><tr><td><p>Đồng Nai<a href='{LINK}'<img src={IMG}></a>"
        f"<a href=\"{LINK}\"><img src=\"{IMG}\">",
        [b("link+img")],
    ),
    ("huge-page", page("x" * MAX_PAGE_CHARS + f'<img src="{IMG}">'), []),
]


@pytest.mark.parametrize(("html", "expected"), [c[1:] for c in EXTRACTION_CASES], ids=[c[0] for c in EXTRACTION_CASES])
def test_extract_badges(html: str, expected: list[Expected]) -> None:
    badges = extract_badges(html, PAGE)
    assert [(x.how, x.image_host, x.slug) for x in badges] == expected
    for badge in badges:
        assert badge.link_url is None or badge.link_url.startswith(("https://", "http://"))
        assert badge.image_url is None or badge.image_url.startswith(("https://", "http://"))
        if badge.slug is not None:
            assert (badge.slug_domain, badge.label_number) == tuple(badge.slug.rsplit("-", 1))


def test_extracted_urls_are_resolved_against_the_page() -> None:
    html = page(f"<a href='//tinnhiemmang.vn/danh-ba-tin-nhiem/{SLUG}'><img src='../images/tnm.png'></a>")
    (badge,) = extract_badges(html, "https://www.dongnai.gov.vn/vi/trang-chu/index.html")
    assert badge.link_url == LINK
    assert badge.image_url == "https://www.dongnai.gov.vn/vi/images/tnm.png"
    assert badge.slug_domain == "dongnaigovvn" and badge.label_number == "1712345678"


def test_extraction_is_bounded() -> None:
    many = "".join(f'<img src="https://tinnhiemmang.vn/handle_cert?id=site{i}.gov.vn">' for i in range(100))
    assert len(extract_badges(page(many), PAGE)) == MAX_BADGES
    long_id = "a" * 5000 + ".gov.vn"
    (badge,) = extract_badges(page(f'<img src="https://tinnhiemmang.vn/handle_cert?id={long_id}">'), PAGE)
    assert badge.image_host is not None and len(badge.image_host) == MAX_TEXT
    assert badge.image_url is not None and len(badge.image_url) == MAX_TEXT
    long_slug = "a" * 200 + "-1"
    html = page(f'<a href="https://tinnhiemmang.vn/danh-ba-tin-nhiem/{long_slug}"><img src="{IMG}"></a>')
    (badge,) = extract_badges(html, PAGE)
    assert badge.slug is None and badge.image_host == "dongnai.gov.vn"


def test_deeply_nested_and_unbalanced_page_is_handled_quickly() -> None:
    html = (
        "<div><span>" * 20000
        + "<script>var s = 'unterminated; var t = `also" + "\\'" * 1000 + "</script>"
        + f'<img src="{IMG}"><!-- unterminated comment <a href="{LINK}">'
    )
    started = time.monotonic()
    badges = extract_badges(html, PAGE)
    assert time.monotonic() - started < 3.0
    assert [x.how for x in badges] == ["img"]


def badge(image_host: str | None = None, slug_domain: str | None = None) -> TrustBadge:
    """A badge carrying only the identifiers the matching rule reads."""
    return TrustBadge(how="link+img", image_host=image_host, slug_domain=slug_domain)


@pytest.mark.parametrize(
    ("candidate", "host", "matches"),
    [
        (badge(image_host="dongnai.gov.vn"), "www.dongnai.gov.vn", True),
        (badge(image_host="www.dongnai.gov.vn"), "www.dongnai.gov.vn", True),
        (badge(image_host="dongnai.gov.vn"), "DongNai.gov.vn.", True),
        (badge(image_host="other.gov.vn"), "www.dongnai.gov.vn", False),
        (badge(image_host="www.dongnai.gov.vn"), "dongnai.gov.vn", False),
        (badge(slug_domain="dongnaigovvn"), "www.dongnai.gov.vn", True),
        (badge(slug_domain="wwwdongnaigovvn"), "www.dongnai.gov.vn", True),
        (badge(slug_domain="topzonevn"), "topzone.vn", True),
        (badge(slug_domain="topzonevn"), "www.dongnai.gov.vn", False),
        (badge(image_host="dongnai.gov.vn", slug_domain="dongnaigovvn"), HOST, True),
        (badge(image_host="dongnai.gov.vn", slug_domain="topzonevn"), HOST, False),
        (badge(image_host="topzone.vn", slug_domain="dongnaigovvn"), HOST, False),
        (badge(), HOST, False),
        (badge(image_host="dongnai.gov.vn"), "", False),
    ],
)
def test_badge_matches_host(candidate: TrustBadge, host: str, matches: bool) -> None:
    assert badge_matches_host(candidate, host) is matches


def test_extracted_badges_match_their_host() -> None:
    html = page(f'<a href="{LINK}"><img src="{IMG}"></a><a href="{LINK}"><img src="/tnm.png"></a>')
    badges = extract_badges(html, PAGE)
    assert [badge_matches_host(x, HOST) for x in badges] == [True, True]
    assert not any(badge_matches_host(x, "topzone.vn") for x in badges)
    assert extract_badges(page('<a href="https://tinnhiemmang.vn/"><img src="/tnm.png"></a>'), PAGE) == []
    assert not badge_matches_host(TrustBadge(how="link+self-hosted", image_url="https://x.vn/tnm.png"), HOST)


# --- snapshot -------------------------------------------------------------------------------------

GOOD_CSV = """\ufeffdomain,label_id,status,issued,expires,level,owner
www.dongnai.gov.vn,TNM-0001,Hiệu lực,12/03/2024,12/03/2027,Nâng cao,UBND tỉnh Đồng Nai
stp.dongnai.gov.vn,TNM-0002,revoked,2023-01-05,,basic,Sở Tư pháp
sct.dongnai.gov.vn,TNM-0003,valid,01/01/2020,31/12/2022,,
SKHCN.DongNai.gov.vn,,expired,,,,
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write a snapshot file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_snapshot_csv_is_loaded_and_answers(tmp_path: Path) -> None:
    path = write(tmp_path, "snapshot.csv", GOOD_CSV)
    entries = load_snapshot(path)
    assert set(entries) == {"dongnai.gov.vn", "stp.dongnai.gov.vn", "sct.dongnai.gov.vn", "skhcn.dongnai.gov.vn"}
    registry = TrustLabelRegistry(snapshot=path, clock=lambda: NOW)
    status = registry.lookup("DONGNAI.gov.vn")
    assert (status.source, status.found, status.status, status.level) == ("snapshot", True, "valid", "advanced")
    assert (status.issued, status.expires, status.label_id) == (date(2024, 3, 12), date(2027, 3, 12), "TNM-0001")
    assert status.owner == "UBND tỉnh Đồng Nai" and status.domain == "dongnai.gov.vn"
    assert registry.lookup("www.stp.dongnai.gov.vn").status == "revoked"
    assert registry.lookup("sct.dongnai.gov.vn").status == "expired"  # valid, but `expires` is past
    assert registry.lookup("skhcn.dongnai.gov.vn").status == "expired"
    missing = registry.lookup("cong-khac.vn", "congkhacvn-1234567890")
    assert (missing.source, missing.found, missing.error) == ("snapshot", False, None)


def test_snapshot_json_is_loaded(tmp_path: Path) -> None:
    data = [
        {"domain": "dongnai.gov.vn", "label_id": "TNM-1", "status": "Đã thu hồi", "issued": "2024-03-12",
         "expires": None, "level": "cơ bản", "owner": "UBND"},
        {"domain": "topzone.vn", "label_id": None, "status": "active", "issued": "", "expires": "01/01/2099"},
    ]
    path = write(tmp_path, "snapshot.json", json.dumps(data, ensure_ascii=False))
    registry = TrustLabelRegistry(snapshot=path, clock=lambda: NOW)
    first = registry.lookup("www.dongnai.gov.vn")
    assert (first.status, first.level, first.issued, first.expires) == ("revoked", "basic", date(2024, 3, 12), None)
    second = registry.lookup("topzone.vn")
    assert (second.status, second.label_id, second.expires) == ("valid", None, date(2099, 1, 1))


BROKEN_SNAPSHOTS = [
    ("bad-date.csv", f"{HEADER}x.gov.vn,1,valid,31/02/2024,\n", ["row 2", "issued", "31/02/2024"]),
    ("bad-status.csv", f"{HEADER}a.vn,1,valid,,\nx.gov.vn,1,suspended,,\n", ["row 3", "status", "suspended"]),
    ("missing-column.csv", "domain,label_id,status,issued\nx.gov.vn,1,valid,01/01/2024\n", ["header", "expires"]),
    ("unknown-column.csv", "domain,label_id,status,issued,expire\n", ["header", "expire"]),
    ("bad-domain.csv", f"{HEADER}https://x.vn/,1,valid,,\n", ["row 2", "domain"]),
    ("short-row.csv", f"{HEADER}x.vn,1,valid\n", ["row 2", "3 fields"]),
    ("twice.csv", f"{HEADER}x.vn,1,,,\nWWW.x.vn,2,,,\n", ["row 3", "domain", "twice"]),
    ("order.csv", f"{HEADER}x.vn,1,,02/01/2024,01/01/2024\n", ["row 2", "expires"]),
    ("empty.csv", "", ["empty", "header"]),
    ("bad-date.json", '[{"domain": "x.vn", "label_id": "1", "status": "valid", "issued": "2024-02-30", '
     '"expires": null}]', ["[0]", "issued"]),
    ("missing-key.json", '[{"domain": "x.vn", "label_id": "1", "status": "valid", "issued": null}]',
     ["[0]", "expires"]),
    ("not-a-list.json", '{"domain": "x.vn"}', ["JSON list"]),
    ("bad-type.json", '[{"domain": "x.vn", "label_id": 1, "status": "", "issued": "", "expires": ""}]',
     ["[0].label_id"]),
    ("broken.json", '[{"domain": ', ["not valid JSON"]),
]


@pytest.mark.parametrize(("name", "text", "expected"), BROKEN_SNAPSHOTS, ids=[s[0] for s in BROKEN_SNAPSHOTS])
def test_invalid_snapshot_fails_at_construction(tmp_path: Path, name: str, text: str, expected: list[str]) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(RegistryError) as caught:
        TrustLabelRegistry(snapshot=path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_snapshot_lists_every_problem(tmp_path: Path) -> None:
    text = f"{HEADER}a.vn,1,valid,31/02/2024,\nb.vn,2,unknown,,\nc.vn,3,valid,,\n"
    with pytest.raises(RegistryError) as caught:
        load_snapshot(write(tmp_path, "s.csv", text))
    lines = str(caught.value).splitlines()
    assert "2 problem(s)" in lines[0]
    assert any("row 2: issued" in line for line in lines) and any("row 3: status" in line for line in lines)


def test_nothing_configured_is_unverified() -> None:
    status = TrustLabelRegistry().lookup("dongnai.gov.vn", SLUG)
    assert (status.source, status.found) == ("none", None) and status.error


def test_not_a_domain_is_an_answer_not_an_exception() -> None:
    status = TrustLabelRegistry().lookup("not a domain")
    assert status.found is None and status.error and "domain" in status.error


# --- registry client against the lab stand-in ------------------------------------------------------

ENTRIES = {
    SLUG: RegistryEntry("www.dongnai.gov.vn", "Ủy ban nhân dân tỉnh Đồng Nai", level="advanced"),
    "stpdongnaigovvn-1712345001": RegistryEntry("stp.dongnai.gov.vn", "Sở Tư pháp", status="revoked", layout="inline"),
    "sctdongnaigovvn-1712345002": RegistryEntry("sct.dongnai.gov.vn", "Sở Công Thương", status="expired"),
    "topzonevn-1635823490": RegistryEntry("topzone.vn", "Công ty TNHH Topzone", issued=date(2021, 11, 2)),
    "expiredlabsoctest-1700000001": RegistryEntry("expired.lab.soc.test", "Advanced Systems", layout="inline"),
}


@pytest.fixture
def server() -> Iterator[RegistryServer]:
    """The registry stand-in on a test loopback address."""
    with RegistryServer(ADDRESS, entries=dict(ENTRIES)) as running:
        yield running


RegistryFactory = Callable[..., TrustLabelRegistry]


@pytest.fixture
def make_registry(server: RegistryServer) -> Iterator[RegistryFactory]:
    """Build registry clients on the stand-in (fast defaults), closing them after the test."""
    made: list[TrustLabelRegistry] = []

    def build(**options: object) -> TrustLabelRegistry:
        settings: dict[str, object] = {"base_url": server.base_url, "timeout": 2.0, "min_interval": 0.0, **options}
        registry = TrustLabelRegistry(**settings)  # type: ignore[arg-type]
        made.append(registry)
        return registry

    yield build
    for registry in made:
        registry.close()


def test_registry_valid_label(server: RegistryServer, make_registry: RegistryFactory) -> None:
    status = make_registry().lookup("dongnai.gov.vn", SLUG)
    assert (status.source, status.found, status.status, status.error) == ("registry", True, "valid", None)
    assert (status.issued, status.level, status.label_id) == (date(2024, 3, 12), "advanced", SLUG)
    assert status.owner == "Ủy ban nhân dân tỉnh Đồng Nai" and status.checked_at is not None
    assert server.requests == [f"/danh-ba-tin-nhiem/{SLUG}"]


def test_registry_revoked_expired_and_basic(make_registry: RegistryFactory) -> None:
    registry = make_registry()
    revoked = registry.lookup("stp.dongnai.gov.vn", "stpdongnaigovvn-1712345001")
    assert (revoked.found, revoked.status, revoked.owner, revoked.level) == (True, "revoked", "Sở Tư pháp", "basic")
    expired = registry.lookup("www.sct.dongnai.gov.vn", "sctdongnaigovvn-1712345002")
    assert (expired.found, expired.status, expired.domain) == (True, "expired", "www.sct.dongnai.gov.vn")
    topzone = registry.lookup("topzone.vn", "topzonevn-1635823490")
    assert (topzone.status, topzone.issued, topzone.level) == ("valid", date(2021, 11, 2), "basic")


def test_words_inside_names_do_not_set_status_or_level(make_registry: RegistryFactory) -> None:
    status = make_registry().lookup("expired.lab.soc.test", "expiredlabsoctest-1700000001")
    assert (status.found, status.status, status.level, status.owner) == (True, "valid", "basic", "Advanced Systems")


def test_registry_unknown_slug_is_not_found(server: RegistryServer, make_registry: RegistryFactory) -> None:
    status = make_registry().lookup("cong-khac.vn", "cong-khacvn-1635823491")
    assert (status.source, status.found, status.error) == ("registry", False, None)
    assert server.requests == ["/danh-ba-tin-nhiem/cong-khacvn-1635823491"]


def test_snapshot_first_then_registry(tmp_path: Path, server: RegistryServer, make_registry: RegistryFactory) -> None:
    snapshot = write(tmp_path, "s.csv", f"{HEADER}dongnai.gov.vn,S-1,valid,,\n")
    registry = make_registry(snapshot=snapshot)
    assert registry.lookup(HOST, SLUG).source == "snapshot"
    assert registry.lookup("topzone.vn", "topzonevn-1635823490").source == "registry"
    assert registry.lookup("sct.dongnai.gov.vn").source == "snapshot"  # no slug: the snapshot's "not listed"
    assert server.requests == ["/danh-ba-tin-nhiem/topzonevn-1635823490"]


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("../../danh-ba-tin-nhiem", "invalid"),
        ("dongnaigovvn-1712345678\n", None),
        ("DongNaiGovVn-1712345678", None),
        ("topzonevn-1635823490", "does not name"),
        ("dongnaigovvn", "form"),
        ("x" * 129, "invalid"),
    ],
)
def test_suspicious_slugs_are_not_requested(
    server: RegistryServer, make_registry: RegistryFactory, slug: str, reason: str | None
) -> None:
    status = make_registry().lookup(HOST, slug)
    if reason is None:
        assert status.found is True and server.requests == [f"/danh-ba-tin-nhiem/{SLUG}"]
    else:
        assert status.found is None and status.error and reason in status.error
        assert server.requests == []


@pytest.mark.parametrize(("mode", "expected"), [("error", "HTTP 500"), ("redirect", "not followed"),
                                                ("huge", "larger than"), ("garbage", "does not name")])
def test_registry_failures_are_unverified(
    server: RegistryServer, make_registry: RegistryFactory, mode: str, expected: str
) -> None:
    server.fail_mode = mode  # type: ignore[assignment]
    status = make_registry().lookup(HOST, SLUG)
    assert (status.source, status.found) == ("registry", None)
    assert status.error is not None and expected in status.error
    assert len(server.requests) == 1


def test_hanging_registry_times_out_fast(server: RegistryServer, make_registry: RegistryFactory) -> None:
    server.fail_mode = "hang"
    started = time.monotonic()
    status = make_registry(timeout=0.3).lookup(HOST, SLUG)
    assert time.monotonic() - started < 1.5
    assert status.found is None and status.error is not None and "Timeout" in status.error


def test_unreachable_registry_is_unverified() -> None:
    with RegistryServer(ADDRESS) as gone:
        base_url = gone.base_url
    with TrustLabelRegistry(base_url=base_url, timeout=1.0, min_interval=0.0) as registry:
        status = registry.lookup(HOST, SLUG)
    assert status.found is None and status.error is not None and "unreachable" in status.error


def test_answers_are_cached(server: RegistryServer, make_registry: RegistryFactory) -> None:
    registry = make_registry()
    first = registry.lookup(HOST, SLUG)
    again = registry.lookup("DONGNAI.GOV.VN", SLUG)
    without_slug = registry.lookup("dongnai.gov.vn")
    assert len(server.requests) == 1
    assert again.found is True and again.domain == "dongnai.gov.vn" and again.checked_at == first.checked_at
    assert without_slug.found is True
    server.fail_mode = "error"
    assert registry.lookup(HOST, SLUG).found is True and len(server.requests) == 1


def test_failures_are_cached_too(server: RegistryServer, make_registry: RegistryFactory) -> None:
    server.fail_mode = "error"
    registry = make_registry()
    assert registry.lookup(HOST, SLUG).found is None
    server.fail_mode = None
    assert registry.lookup(HOST, SLUG).found is None
    assert len(server.requests) == 1


def test_concurrent_lookups_of_one_domain_make_one_request(
    server: RegistryServer, make_registry: RegistryFactory
) -> None:
    registry = make_registry(min_interval=0.1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(registry.lookup(HOST, SLUG))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(results) == 8 and all(r.found for r in results)
    assert len(server.requests) == 1


def test_rate_limit_spaces_requests(server: RegistryServer, make_registry: RegistryFactory) -> None:
    registry = make_registry(min_interval=0.2)
    started = time.monotonic()
    registry.lookup(HOST, SLUG)
    registry.lookup("topzone.vn", "topzonevn-1635823490")
    assert time.monotonic() - started >= 0.2
    lookups = [
        ("stp.dongnai.gov.vn", "stpdongnaigovvn-1712345001"),
        ("sct.dongnai.gov.vn", "sctdongnaigovvn-1712345002"),
        ("a.vn", "avn-1"),
        ("b.vn", "bvn-2"),
    ]
    started = time.monotonic()
    threads = [threading.Thread(target=registry.lookup, args=pair) for pair in lookups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert time.monotonic() - started >= 3 * 0.2 + 0.1  # first waits for the previous slot, then 3 intervals
    assert len(server.requests) == 6


def test_cache_file_round_trip(tmp_path: Path, server: RegistryServer, make_registry: RegistryFactory) -> None:
    cache = tmp_path / "cache" / "trustlabel.json"
    clock = [NOW]
    first = make_registry(cache_path=cache, clock=lambda: clock[0]).lookup(HOST, SLUG)
    assert cache.is_file() and not list(cache.parent.glob("*.tmp"))
    document = json.loads(cache.read_text(encoding="utf-8"))
    assert document["version"] == 1 and set(document["entries"]) == {"dongnai.gov.vn"}
    clock[0] = NOW + timedelta(hours=23)
    second = make_registry(cache_path=cache, clock=lambda: clock[0]).lookup("dongnai.gov.vn", SLUG)
    assert second.model_copy(update={"domain": HOST}) == first
    assert len(server.requests) == 1
    clock[0] = NOW + timedelta(hours=25)
    third = make_registry(cache_path=cache, clock=lambda: clock[0]).lookup(HOST, SLUG)
    assert third.checked_at == NOW + timedelta(hours=25) and len(server.requests) == 2


def test_corrupt_cache_file_is_ignored(tmp_path: Path, server: RegistryServer, make_registry: RegistryFactory) -> None:
    cache = write(tmp_path, "cache.json", '{"version": 1, "entries": {"dongnai.gov.vn": {"fetched_at": "x"}}')
    assert make_registry(cache_path=cache).lookup(HOST, SLUG).found is True
    assert len(server.requests) == 1 and json.loads(cache.read_text(encoding="utf-8"))["version"] == 1


def test_detail_page_naming_another_domain_is_not_a_label() -> None:
    other = detail_page(RegistryEntry("cong-khac.vn", "Công ty khác"))
    status = parse_detail_page(other, "dongnai.gov.vn", SLUG, NOW)
    assert status.found is False and status.error and "cong-khac.vn" in status.error


def test_registry_server_refuses_non_loopback_addresses() -> None:
    for address in ("0.0.0.0", "10.0.0.1", "::1", "localhost"):  # each refused
        with pytest.raises(LabError):
            RegistryServer(address)


def test_registry_base_url_is_checked() -> None:
    for bad in ("ftp://127.0.0.1", "tinnhiemmang.vn", "http://127.0.0.1:99999"):
        with pytest.raises(RegistryError):
            TrustLabelRegistry(base_url=bad)
