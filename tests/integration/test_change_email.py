"""The change e-mail after a scan, received by a real SMTP server on loopback (aiosmtpd): plain, and with
STARTTLS (a certificate made at run time by trustme) and authentication; failures retried and reported in
words, never with the password; hostile evidence that cannot add a header or a control character."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from checks.catalogue import make_finding
from soc.core.clock import FixedClock
from soc.core.models import FindingStatus, Observation, PortalScan, RunStatus, Severity, StoredFinding
from soc.core.settings import Settings, SmtpSettings
from soc.inventory import Portal
from soc.notify.mail import (
    MAX_EVIDENCE,
    MAX_LISTED,
    ChangeSummary,
    Verdict,
    change_message,
    send_message,
)
from soc.scan.pipeline import PortalResult, ScanReport
from soc.services.context import ServiceContext, open_context
from soc.services.notify import change_summary, send_change_email
from tests.conftest import NOW

PORTAL = "https://stp.dongnai.gov.vn/"
RECIPIENTS = ["lanh-dao@dongnai.gov.vn", "soc@dongnai.gov.vn"]
USER, PASSWORD = "soc-notify", "s3cret-Pa55word-42"


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd does not accept port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """What the server was given: envelopes, and per message whether TLS and AUTH were in force."""

    envelopes: list[Envelope] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)
    logins: list[bytes | None] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.tls.append(session.ssl is not None)
        auth = session.auth_data
        self.logins.append(auth.login if isinstance(auth, LoginPassword) else None)
        return "250 Message accepted for delivery"

    def message(self, index: int = 0) -> EmailMessage:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Server:
    received: Received
    port: int
    ca_file: Path | None = None

    def settings(self, **values: Any) -> SmtpSettings:
        base: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "starttls": False,
                                "recipients": RECIPIENTS, "attempts": 1, "retry_seconds": 0}
        return SmtpSettings.model_validate(base | values)


@pytest.fixture
def plain_server() -> Iterator[Server]:
    """SMTP without TLS or AUTH."""
    received, port = Received(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Server(received, port)
    finally:
        controller.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Server]:
    """SMTP that requires STARTTLS (trustme certificate for 127.0.0.1) and then AUTH as USER / PASSWORD."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    received, port = Received(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_required=True, auth_require_tls=True)
    controller.start()
    try:
        yield Server(received, port, ca_file)
    finally:
        controller.stop()


def stored(check_id: str, *, detail: str = "", severity: Severity | None = None, evidence: str = "bằng chứng",
           portal: str = PORTAL, status: FindingStatus = FindingStatus.OPEN, due_at: datetime | None = None
           ) -> StoredFinding:
    finding = make_finding(portal, check_id, evidence, detail, severity)
    resolved = status is FindingStatus.RESOLVED
    return StoredFinding(**finding.model_dump(), fingerprint=finding.fingerprint, status=status,
                         first_seen=NOW - timedelta(days=10), last_seen=NOW, last_run_id="run-2",
                         resolved_at=NOW if resolved else None, opened_at=NOW - timedelta(days=10), due_at=due_at)


def summary(**values: Any) -> ChangeSummary:
    base: dict[str, Any] = {"run_id": "run-2", "inventory": "dongnai.yaml", "started_at": NOW - timedelta(hours=1),
                            "finished_at": NOW, "run_status": RunStatus.COMPLETE, "portals_scanned": 2,
                            "portal_count": 2}
    return ChangeSummary.model_validate(base | values)


def improved() -> ChangeSummary:
    """One new medium finding, three resolved: improved."""
    return summary(
        new=[stored("http.hsts.missing")],
        resolved=[stored("http.header.csp_missing", status=FindingStatus.RESOLVED),
                  stored("http.header.frame_options_missing", status=FindingStatus.RESOLVED),
                  stored("tls.protocol.tls10", status=FindingStatus.RESOLVED)],
    )


def plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_body(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_verdict_rule() -> None:
    medium, low = stored("http.hsts.missing"), stored("http.header.csp_missing")
    high = stored("tls.cert.expired", severity=Severity.HIGH)
    fixed = [stored("tls.protocol.tls10", detail=str(i), status=FindingStatus.RESOLVED) for i in range(5)]
    assert improved().verdict is Verdict.IMPROVED
    assert summary(new=[medium, low], resolved=fixed[:1]).verdict is Verdict.REGRESSED
    assert summary(reopened=[high], resolved=fixed).verdict is Verdict.REGRESSED  # one serious outweighs five
    assert summary(new=[medium], resolved=fixed[:1]).verdict is Verdict.UNCHANGED
    assert summary(breaches=[high]).verdict is Verdict.UNCHANGED  # the backlog is reported, not a change


def test_the_change_email_arrives_with_both_languages(plain_server: Server) -> None:
    settings = plain_server.settings()
    message = change_message(improved(), settings, NOW)
    report = send_message(message, settings)
    assert (report.delivered, report.attempts, report.errors, report.recipients) == (True, 1, [], RECIPIENTS)
    [envelope] = plain_server.received.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("soc@dongnai.gov.vn", RECIPIENTS)
    got = plain_server.received.message()
    assert got["Subject"] == "[SOC Đồng Nai] Cải thiện / Improved — 3 đã khắc phục / resolved, 1 mới / new"
    assert got["To"] == ", ".join(RECIPIENTS) and got["Auto-Submitted"] == "auto-generated"
    assert got["Date"] == "Fri, 27 Nov 2026 09:00:00 +0700"
    assert str(got["Message-ID"]).endswith("@soc.dongnai.gov.vn>")
    text = plain_body(got)
    assert text.index("Báo cáo thay đổi") < text.index("Change report")
    assert "Kết luận / Verdict: Cải thiện / Improved" in text
    assert "Bắt đầu / Started: 27/11/2026 08:00 · Kết thúc / Finished: 27/11/2026 09:00" in text
    new_section, resolved_section = text.index("Mới / New (1)"), text.index("Đã khắc phục / Resolved (3)")
    hsts = make_finding(PORTAL, "http.hsts.missing", "")
    assert new_section < text.index(hsts.title_vi) < text.index(hsts.title_en) < resolved_section
    for check_id in ("http.header.csp_missing", "http.header.frame_options_missing", "tls.protocol.tls10"):
        assert text.index(check_id) > resolved_section
    assert "Mở lại / Reopened (" not in text  # empty sections are left out
    assert hsts.title_en in html_body(got)


@pytest.mark.lab  # a TLS server
def test_starttls_and_authentication(tls_server: Server) -> None:
    settings = tls_server.settings(starttls=True, username=USER, password=SecretStr(PASSWORD),
                                   ca_file=tls_server.ca_file)
    report = send_message(change_message(improved(), settings, NOW), settings)
    assert report.delivered and report.errors == []
    assert tls_server.received.tls == [True] and tls_server.received.logins == [USER.encode()]
    assert "Cải thiện / Improved" in str(tls_server.received.message()["Subject"])


@pytest.mark.lab  # a TLS server
def test_implicit_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    received, port = Received(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        settings = Server(received, port).settings(ssl=True, starttls=True, ca_file=ca_file)
        report = send_message(change_message(improved(), settings, NOW), settings)
        untrusted = settings.model_copy(update={"ca_file": None})
        refused = send_message(change_message(improved(), untrusted, NOW), untrusted)
    finally:
        controller.stop()
    assert report.delivered and len(received.envelopes) == 1  # the one sent with the CA file
    assert refused.errors == [f"attempt 1/1: cannot connect to smtp 127.0.0.1:{port}: certificate not trusted: "
                              "unable to get local issuer certificate"]


@pytest.mark.lab  # a TLS server
def test_a_wrong_password_is_an_authentication_failure_after_every_attempt(
        tls_server: Server, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "sai-" + PASSWORD
    settings = tls_server.settings(starttls=True, username=USER, password=SecretStr(wrong),
                                   ca_file=tls_server.ca_file, attempts=3, retry_seconds=0.5)
    waits: list[float] = []
    with caplog.at_level("DEBUG"):
        report = send_message(change_message(improved(), settings, NOW), settings, sleep=waits.append)
    assert (report.delivered, report.attempts, len(report.errors)) == (False, 3, 3)
    assert all(f"authentication refused by smtp 127.0.0.1:{tls_server.port} for user 'soc-notify'" in error
               for error in report.errors), report.errors
    assert waits == [0.5, 1.0]
    assert tls_server.received.envelopes == []
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("soc.")]
    assert len(ours) == 3 and all("authentication refused" in line for line in ours)
    for secret in (wrong, PASSWORD):
        assert secret not in report.model_dump_json() and not any(secret in line for line in ours)
    assert wrong not in repr(settings) and wrong not in settings.model_dump_json()


@pytest.mark.lab  # a TLS server
def test_a_certificate_not_trusted_is_said_so(tls_server: Server) -> None:
    settings = tls_server.settings(starttls=True, username=USER, password=SecretStr(PASSWORD))  # no ca_file
    report = send_message(change_message(improved(), settings, NOW), settings)
    [error] = report.errors
    assert not report.delivered and f"STARTTLS with smtp 127.0.0.1:{tls_server.port} failed: certificate " \
        "not trusted" in error
    assert tls_server.received.envelopes == []


def test_a_server_that_is_down_is_retried_with_doubling_waits() -> None:
    port = free_port()  # nothing listens there
    settings = SmtpSettings(host="127.0.0.1", port=port, starttls=False, recipients=RECIPIENTS, attempts=4,
                            retry_seconds=2)
    waits: list[float] = []
    report = send_message(change_message(improved(), settings, NOW), settings, sleep=waits.append)
    assert (report.delivered, report.attempts, report.recipients) == (False, 4, RECIPIENTS)
    assert [error.split(": ", 1)[0] for error in report.errors] == [f"attempt {n}/4" for n in range(1, 5)]
    assert all(f"cannot connect to smtp 127.0.0.1:{port}: " in error for error in report.errors)
    assert waits == [2, 4, 8]


def test_without_host_or_recipients_nothing_is_tried() -> None:
    waits: list[float] = []
    for settings, why in ((SmtpSettings(recipients=RECIPIENTS), "no SMTP host (SOC_SMTP__HOST)"),
                          (SmtpSettings(host="127.0.0.1"), "no recipients (SOC_SMTP__RECIPIENTS)")):
        report = send_message(change_message(improved(), settings, NOW), settings, sleep=waits.append)
        assert (report.delivered, report.attempts) == (False, 0)
        assert report.errors == [f"e-mail not configured: {why}"]
    cleartext = SmtpSettings(host="127.0.0.1", starttls=False, recipients=RECIPIENTS, username=USER,
                             password=SecretStr(PASSWORD))
    report = send_message(change_message(improved(), cleartext, NOW), cleartext)
    assert report.attempts == 0 and "password would cross the network in clear" in report.errors[0]
    vietnamese = cleartext.model_copy(update={"starttls": True, "password": SecretStr("Mật-khẩu")})
    report = send_message(change_message(improved(), vietnamese, NOW), vietnamese)
    assert report.attempts == 0 and "may hold only ASCII characters" in report.errors[0]
    assert "Mật-khẩu" not in report.model_dump_json()
    assert waits == []


def test_a_bad_address_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"smtp\.recipients\[1\]: .* is not an e-mail address"):
        change_message(improved(), SmtpSettings(recipients=["a@dongnai.gov.vn", "b@x.vn\r\nBcc: c@y.vn"]), NOW)


def test_hostile_evidence_adds_no_header_and_no_control_character(plain_server: Server) -> None:
    hostile = "ok\r\nBcc: x@y.vn\r\n\r\n\x1b[2J\x1b]0;pwned\x07 \u202eevil\u202c" + "A" * 5000
    portal = "https://evil.dongnai.gov.vn/\r\nX-Injected: 1"
    settings = plain_server.settings()
    message = change_message(summary(new=[stored("http.hsts.missing", evidence=hostile, portal=portal,
                                                 severity=Severity.CRITICAL)]), settings, NOW)
    assert send_message(message, settings).delivered
    [envelope] = plain_server.received.envelopes
    assert envelope.rcpt_tos == RECIPIENTS
    raw = envelope.content
    assert isinstance(raw, bytes) and b"\x1b" not in raw and b"\x07" not in raw
    got = plain_server.received.message()
    assert sorted(got.keys()) == sorted(["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted",
                                         "X-SOC-Run", "X-SOC-Verdict", "Content-Type", "MIME-Version"])
    assert "\r" not in str(got["Subject"]) and "\n" not in str(got["Subject"])
    assert str(got["Subject"]).startswith("[SOC Đồng Nai] Xấu đi / Regressed — 0 đã khắc phục / resolved, 1 mới")
    for body in (plain_body(got), html_body(got)):
        lines = body.replace("\r\n", "\n").split("\n")  # the wire's CRLF line ends, kept by the parser
        assert not any(char in line for line in lines for char in "\r\x1b\x07\u202e\u202c")
        assert not any(line.startswith(("Bcc:", "X-Injected:")) for line in lines)
        assert "\\r\\nX-Injected: 1" in body
    text = plain_body(got)
    evidence_line = next(line for line in text.splitlines() if "Evidence:" in line)
    assert evidence_line.startswith("     Bằng chứng / Evidence: ok\\r\\nBcc: x@y.vn\\r\\n\\r\\n\\x1b[2J\\x1b]0;pwned")
    assert "\\u202eevil\\u202c" in evidence_line
    assert len(evidence_line.split("Evidence: ", 1)[1]) == MAX_EVIDENCE and evidence_line.endswith("…")
    assert "<code>ok\\r\\nBcc: x@y.vn" in html_body(got)


def test_long_sections_are_cut_and_counted() -> None:
    many = [stored("http.header.csp_missing", detail=str(i)) for i in range(MAX_LISTED + 7)]
    text = plain_body(change_message(summary(new=many), SmtpSettings(recipients=RECIPIENTS), NOW))
    assert text.count("http.header.csp_missing") == MAX_LISTED
    assert "  … và 7 mục khác / … and 7 more" in text
    assert f"Mới / New ({MAX_LISTED + 7})" in text


# --- the service: a real store, two runs, the e-mail received --------------------------------------------


def record(context: ServiceContext, check_ids: list[str]) -> ScanReport:
    """One run of one portal whose complete HTTP observation saw `check_ids`, as the pipeline reports it."""
    store, now = context.backend.findings, context.clock.now()
    run = store.begin_run("dongnai.yaml", 1)
    findings = [make_finding(PORTAL, check_id, f"thấy lúc / seen at {now:%H:%M}") for check_id in check_ids]
    observation = Observation(collector="http", portal_url=PORTAL, observed_at=now, complete=True)
    assessment = PortalScan(run_id=run.id, portal_url=PORTAL, recorded_at=now, collectors={"http": True})
    changes = store.record_portal(run.id, PORTAL, [observation], findings, assessment)
    finished = store.finish_run(run.id, complete=True)
    portal = Portal(url=PORTAL, agency="stp")
    return ScanReport(run=finished, collectors=("http",),
                      portals=[PortalResult(portal, {}, findings, changes, assessment)])


def test_the_service_sends_what_the_run_changed_and_audits_it(tmp_path: Path, plain_server: Server) -> None:
    clock = FixedClock(NOW)
    settings = Settings(db=tmp_path / "soc.db", smtp=plain_server.settings())
    with open_context(settings, clock, "tester") as context:
        first = record(context, ["http.hsts.missing", "http.header.csp_missing", "http.header.frame_options_missing"])
        hsts = make_finding(PORTAL, "http.hsts.missing", "")
        context.backend.findings.set_deadlines({hsts.fingerprint: (NOW - timedelta(days=3), NOW + timedelta(hours=1))})
        clock.advance(timedelta(days=1))
        second = record(context, ["http.hsts.missing", "http.server_version_disclosed"])

        changes = change_summary(context, second)
        assert [f.check_id for f in changes.new] == ["http.server_version_disclosed"]
        assert sorted(f.check_id for f in changes.resolved) == ["http.header.csp_missing",
                                                                "http.header.frame_options_missing"]
        assert all(f.status is FindingStatus.RESOLVED for f in changes.resolved)
        assert [f.check_id for f in changes.breaches] == ["http.hsts.missing"]
        assert (changes.verdict, changes.run_status, changes.portals_scanned) == (Verdict.IMPROVED,
                                                                                 RunStatus.COMPLETE, 1)
        assert first.run.id != second.run.id

        delivery = send_change_email(context, second)
        assert delivery.delivered
        got = plain_server.received.message()
        assert got["Subject"] == ("[SOC Đồng Nai] Cải thiện / Improved — 2 đã khắc phục / resolved, 1 mới / new, "
                                  "1 quá hạn SLA / SLA breached")
        assert got["X-SOC-Run"] == second.run.id
        text = plain_body(got)
        assert "Quá hạn SLA / SLA breached (1)" in text and "Hạn SLA / SLA due: 27/11/2026 10:00" in text

        [entry] = context.backend.audit.entries(action_prefix="notify.")
        assert (entry.action, entry.subject, entry.actor) == ("notify.change_email", second.run.id, "tester")
        assert entry.after == {"delivered": True, "attempts": 1, "recipients": 2, "refused": 0,
                               "verdict": "improved", "message_id": got["Message-ID"]}

        context.settings.smtp = plain_server.settings(port=free_port(), attempts=2, retry_seconds=0,
                                                      username=USER, password=SecretStr(PASSWORD), starttls=True)
        failed = send_change_email(context, second, sleep=lambda _: None)
        assert (failed.delivered, failed.attempts) == (False, 2)
        failure = context.backend.audit.entries(action_prefix="notify.")[0]
        assert failure.after is not None and failure.after["delivered"] is False
        assert failure.note is not None and "cannot connect to smtp 127.0.0.1:" in failure.note
        assert PASSWORD not in failure.model_dump_json()
