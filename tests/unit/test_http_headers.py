"""Response headers judged whole, stored bounded: the collector's selection and the checks' reading of it.

Literal data only: `kept_headers` is what the HTTP collector stores of a response's header fields, and
the checks read nothing else, so "a header that comes late is still judged" is decided here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpcore
import pytest

from checks.http import evaluate_http, first, frame_options_protect, hsts_max_age, values
from collectors.http import MAX_HEADER_BYTES, MAX_HEADER_VALUE, MAX_OTHER_HEADERS, HeadTooLarge, kept_headers
from soc.core.observations import JUDGED_HEADERS, HttpObservation, RedirectHop

URL = "https://stp.dongnai.gov.vn/"
HOST = "stp.dongnai.gov.vn"
GOOD = [
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("content-security-policy", "default-src 'self'; frame-ancestors 'self'"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("server", "nginx"),
]
FILLER = [(f"x-filler-{i:03d}", f"harmless value {i}") for i in range(150)]


def observation(fields: list[tuple[str, str]], **changes: object) -> HttpObservation:
    """What the collector makes of a homepage that sent `fields`."""
    base: dict[str, object] = dict(
        portal_url=URL, host=HOST, address="127.0.0.1", observed_at=datetime(2026, 11, 27, tzinfo=UTC),
        start_url=f"http://{HOST}/", redirects=[RedirectHop(url=f"http://{HOST}/", status=301, location=URL),
                                                 RedirectHop(url=URL)],
        reaches_https=True, final_url=URL, status=200, headers=kept_headers(fields), header_count=len(fields),
        security_txt=True,
    )
    base.update(changes)
    return HttpObservation.model_validate(base)


def ids(obs: HttpObservation) -> set[str]:
    return {finding.check_id for finding in evaluate_http(obs)}


def test_security_headers_after_150_others_are_judged() -> None:
    """The old collector kept the first 100 fields: these security headers came after them."""
    obs = observation([("content-type", "text/html"), *FILLER, *GOOD])
    assert ids(obs) == set() and obs.complete
    assert obs.header_count == 157
    assert obs.headers["strict-transport-security"] == ["max-age=31536000; includeSubDomains"]


def test_storage_keeps_judged_headers_whole_and_a_bounded_rest() -> None:
    long_csp = "default-src 'self'; " + "script-src https://cdn.example; " * 200 + "frame-ancestors 'none'"
    fields = [("x-big", "A" * 10_000), *FILLER, *FILLER, ("content-security-policy", long_csp), *GOOD[2:]]
    kept = kept_headers(fields)
    others = [value for name, found in kept.items() if name not in JUDGED_HEADERS for value in found]
    assert len(others) == MAX_OTHER_HEADERS
    assert all(len(value) <= MAX_HEADER_VALUE for value in others)
    assert kept["x-big"] == ["A" * (MAX_HEADER_VALUE - 1) + "…"]
    assert kept["content-security-policy"] == [long_csp]  # whole: frame-ancestors is 6 kB in
    obs = observation(fields)
    assert ids(obs) == {"http.hsts.missing"}  # frame-ancestors found at the end of a 6 kB policy


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # HSTS: only the first field counts (RFC 6797 §8.1), however good a later one is.
        ([("strict-transport-security", "max-age=86400"), ("strict-transport-security", "max-age=31536000")],
         {"http.hsts.short_max_age"}),
        ([("strict-transport-security", "max-age=31536000"), ("strict-transport-security", "max-age=0")], set()),
        # CSP: every policy is enforced, so frame-ancestors in any of them protects.
        ([("content-security-policy", "default-src 'self'"), ("content-security-policy", "frame-ancestors 'none'")],
         set()),
        ([("content-security-policy", "default-src 'self', frame-ancestors 'none'")], set()),
        ([("content-security-policy", "")], {"http.header.csp_missing"}),  # an empty policy is none
        # X-Content-Type-Options: the first value of the fields combined (Fetch).
        ([("x-content-type-options", "nosniff, nosniff")], set()),
        ([("x-content-type-options", "nosniff"), ("x-content-type-options", "other")], set()),
        ([("x-content-type-options", "other"), ("x-content-type-options", "nosniff")],
         {"http.header.content_type_options_missing"}),
    ],
)
def test_repeated_security_headers_count_as_browsers_count_them(
    fields: list[tuple[str, str]], expected: set[str]
) -> None:
    replaced = {name for name, _ in fields}
    obs = observation([*(f for f in GOOD if f[0] not in replaced), *fields])
    assert ids(obs) == expected


@pytest.mark.parametrize(
    ("options", "protects"),
    [
        ([], False),
        (["DENY"], True),
        (["SAMEORIGIN"], True),
        (["SAMEORIGIN", "SAMEORIGIN"], True),
        (["SAMEORIGIN", "DENY"], True),  # conflicting values: HTML blocks framing altogether
        (["ALLOW-FROM https://a.example"], False),  # not honoured by browsers
        (["ALLOW-FROM https://a.example", "whatever"], False),
    ],
)
def test_x_frame_options_read_as_html_reads_it(options: list[str], protects: bool) -> None:
    obs = observation([("x-frame-options", value) for value in options])
    assert frame_options_protect(obs) is protects
    no_csp = observation([f for f in GOOD if f[0] not in ("content-security-policy", "x-frame-options")]
                         + [("content-security-policy", "default-src 'self'")]
                         + [("x-frame-options", value) for value in options])
    assert ("http.header.frame_options_missing" in ids(no_csp)) is not protects


def test_headers_over_the_size_limit_are_not_judged_and_resolve_nothing() -> None:
    """The collector could not read the head whole: no 'missing header', no 'unreachable', incomplete."""
    error = str(HeadTooLarge(130_000))
    obs = observation([], error=error, headers_error=error, status=None)
    assert ids(obs) == set() and not obs.complete
    partial = observation([("server", "nginx")], headers_error=error)  # page read, head over the limit
    assert ids(partial) == set() and not partial.complete
    assert ids(observation([], headers_error=error, reaches_https=False)) == {"http.no_https_redirect"}


def test_the_head_size_limit_is_the_http_clients_own() -> None:
    """Every head httpcore accepts up to its limit is judged whole; the collector's line is the same one."""
    from httpcore._sync.http11 import HTTP11Connection

    assert httpcore.__version__ and MAX_HEADER_BYTES == HTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE


def test_checks_read_only_headers_the_collector_keeps_whole() -> None:
    obs = observation(GOOD)
    assert first(obs, "strict-transport-security") == "max-age=31536000; includeSubDomains"
    assert hsts_max_age(obs) == 31536000
    with pytest.raises(KeyError, match="JUDGED_HEADERS"):
        values(obs, "set-cookie")
