"""The change e-mail after each scheduled scan, and its delivery over SMTP.

`change_message` writes what a run changed (new, reopened and resolved findings, SLA breaches) as one
bilingual message, Vietnamese first, English second; `send_message` delivers it to the configured relay
(implicit TLS or STARTTLS, authentication, retries with doubling waits) and says in words what failed.

Portal-controlled text (evidence, portal URLs) goes through `soc.core.untrusted.visible` — and
`html.escape` in the HTML part — so it can neither add a header nor put a control character in the mail.
The SMTP password is read only to log in: it is in no error, no log line and no report.
"""

from __future__ import annotations

import html
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Final, NamedTuple

from pydantic import BaseModel, Field

from soc.core.clock import LOCAL_ZONE, local_time
from soc.core.errors import InputError
from soc.core.models import FindingStatus, RunStatus, Severity, StoredFinding
from soc.core.settings import SmtpSettings
from soc.core.untrusted import visible

log = logging.getLogger(__name__)

SUBJECT_PREFIX: Final = "[SOC Đồng Nai]"
MESSAGE_ID_DOMAIN: Final = "soc.dongnai.gov.vn"
"""Fixed right-hand side of the Message-ID (not the host name: no lookup, the same on every server)."""
MAX_LISTED: Final = 50
"""Findings listed per section; the rest are counted ("… and N more")."""
MAX_EVIDENCE: Final = 300
"""Characters of evidence shown per finding (after control characters are made visible)."""
MAX_SERVER_TEXT: Final = 200
"""Characters of an SMTP server's reply kept in an error."""
SERIOUS: Final = frozenset({Severity.CRITICAL, Severity.HIGH})
"""A new or reopened finding of these severities makes the verdict 'regressed' whatever else changed."""

_SEVERITY: Final = {
    Severity.CRITICAL: ("Nghiêm trọng", "critical"), Severity.HIGH: ("Cao", "high"),
    Severity.MEDIUM: ("Trung bình", "medium"), Severity.LOW: ("Thấp", "low"), Severity.INFO: ("Thông tin", "info"),
}
_RUN_STATUS: Final = {
    RunStatus.COMPLETE: ("hoàn tất", "complete"), RunStatus.INCOMPLETE: ("chưa hoàn tất", "incomplete"),
    RunStatus.RUNNING: ("đang chạy", "running"),
}
_ADDRESS: Final = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\]+")


class Verdict(StrEnum):
    """Whether a run left things better or worse (see `ChangeSummary.verdict`)."""

    IMPROVED = "improved"
    REGRESSED = "regressed"
    UNCHANGED = "unchanged"


_VERDICT: Final = {
    Verdict.IMPROVED: ("Cải thiện", "Improved"), Verdict.REGRESSED: ("Xấu đi", "Regressed"),
    Verdict.UNCHANGED: ("Không đổi", "Unchanged"),
}


class MailSettingsError(InputError):
    """The e-mail settings cannot be used as they are; the message names the setting."""


class ChangeSummary(BaseModel):
    """What one scan run changed, with the findings as they are now (the services gather them)."""

    run_id: str
    inventory: str
    started_at: datetime
    finished_at: datetime | None = None
    run_status: RunStatus
    portals_scanned: int = Field(ge=0)
    portal_count: int | None = Field(default=None, ge=0)
    """Portals the run meant to scan (None: not known)."""
    new: list[StoredFinding] = Field(default_factory=list)
    reopened: list[StoredFinding] = Field(default_factory=list)
    resolved: list[StoredFinding] = Field(default_factory=list)
    breaches: list[StoredFinding] = Field(default_factory=list)
    """Findings past their SLA deadline now (whichever run found them)."""

    @property
    def verdict(self) -> Verdict:
        """The rule, in this order:

        - regressed: more findings opened (new + reopened) than resolved, or any new or reopened finding
          is critical or high (one serious finding outweighs any number of mild ones fixed);
        - improved: more findings resolved than opened (new + reopened);
        - unchanged: otherwise (as many opened as resolved, none of them serious; or nothing changed).

        SLA breaches are reported but do not change the verdict: they are the state of the backlog,
        not a change made by this run.
        """
        opened = self.new + self.reopened
        if len(opened) > len(self.resolved) or any(f.severity in SERIOUS for f in opened):
            return Verdict.REGRESSED
        if len(self.resolved) > len(opened):
            return Verdict.IMPROVED
        return Verdict.UNCHANGED


class DeliveryReport(BaseModel):
    """How sending one message went: what the job history and the audit log keep."""

    delivered: bool
    attempts: int = Field(ge=0)
    """Connections tried (0: nothing was tried, the settings say why in `errors`)."""
    errors: list[str] = Field(default_factory=list)
    """One line per failed attempt (or per refused recipient), in words; never the password."""
    recipients: list[str] = Field(default_factory=list)
    """Addresses the message was for."""
    refused: list[str] = Field(default_factory=list)
    """Addresses the server refused although it took the message for the others."""


# --- the message -------------------------------------------------------------------------------------


def _v(text: str) -> str:
    """Untrusted text on one line, every control/format character shown as an escape."""
    return visible(text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _evidence(finding: StoredFinding) -> str:
    return _cut(_v(finding.evidence), MAX_EVIDENCE)


def _address(setting: str, value: str) -> str:
    """A bare ASCII address (name@domain.tld), or MailSettingsError naming the setting."""
    if not (value.isascii() and _ADDRESS.fullmatch(value)):
        raise MailSettingsError(f"{setting}: {_v(value)!r} is not an e-mail address (name@domain, ASCII; "
                                "write an international domain in its xn-- form)")
    return value


def _addresses(settings: SmtpSettings) -> tuple[str, list[str]]:
    sender = _address("smtp.sender", settings.sender)
    return sender, [_address(f"smtp.recipients[{i}]", r) for i, r in enumerate(settings.recipients)]


def change_subject(summary: ChangeSummary) -> str:
    """'[SOC Đồng Nai] Cải thiện / Improved — 3 đã khắc phục / resolved, 1 mới / new' (one line, always)."""
    vi, en = _VERDICT[summary.verdict]
    parts = [f"{len(summary.resolved)} đã khắc phục / resolved", f"{len(summary.new)} mới / new"]
    if summary.reopened:
        parts.append(f"{len(summary.reopened)} mở lại / reopened")
    if summary.breaches:
        parts.append(f"{len(summary.breaches)} quá hạn SLA / SLA breached")
    subject = f"{SUBJECT_PREFIX} {vi} / {en} — {', '.join(parts)}"
    if summary.run_status is not RunStatus.COMPLETE:
        subject += " (quét chưa hoàn tất / incomplete scan)"
    return _v(subject)


class _Section(NamedTuple):
    vi: str
    en: str
    findings: list[StoredFinding]


def _sections(summary: ChangeSummary) -> list[_Section]:
    def worst_first(findings: Sequence[StoredFinding]) -> list[StoredFinding]:
        return sorted(findings, key=lambda f: (f.severity.rank, f.portal_url, f.check_id, f.fingerprint))

    return [_Section(vi, en, worst_first(items)) for vi, en, items in (
        ("Mới", "New", summary.new), ("Mở lại", "Reopened", summary.reopened),
        ("Quá hạn SLA", "SLA breached", summary.breaches), ("Đã khắc phục", "Resolved", summary.resolved),
    ) if items]


def _when(finding: StoredFinding) -> str:
    if finding.resolved_at is not None and finding.status is FindingStatus.RESOLVED:
        return f"Khắc phục lúc / Resolved at: {local_time(finding.resolved_at)}"
    if finding.due_at is None:
        return "Hạn SLA / SLA due: không có / none"
    return f"Hạn SLA / SLA due: {local_time(finding.due_at)}"


def _facts(summary: ChangeSummary) -> list[str]:
    """The run in a few bilingual lines (plain text, already one line each and visible)."""
    vi, en = _VERDICT[summary.verdict]
    status_vi, status_en = _RUN_STATUS[summary.run_status]
    scanned = str(summary.portals_scanned) + (f" / {summary.portal_count}" if summary.portal_count is not None
                                               else "")
    return [
        f"Kết luận / Verdict: {vi} / {en}",
        f"Lượt quét / Run: {_v(summary.run_id)} ({_v(summary.inventory)}) — {status_vi} / {status_en}",
        f"Bắt đầu / Started: {local_time(summary.started_at)} · Kết thúc / Finished: "
        f"{local_time(summary.finished_at)} (giờ Việt Nam / Vietnam time, UTC+7)",
        f"Cổng đã quét / Portals scanned: {scanned}",
        f"Mới / New: {len(summary.new)} · Mở lại / Reopened: {len(summary.reopened)} · "
        f"Đã khắc phục / Resolved: {len(summary.resolved)} · Quá hạn SLA / SLA breached: {len(summary.breaches)}",
    ]


_INCOMPLETE = ("Lượt quét chưa hoàn tất: các cổng chưa quét giữ nguyên trạng thái cũ, không phát hiện nào của "
               "chúng được coi là đã khắc phục.",
               "The scan is incomplete: portals not scanned keep their previous state; none of their findings "
               "counts as resolved.")
_RULE = ("Quy tắc: xấu đi khi số mở mới + mở lại nhiều hơn số đã khắc phục hoặc có phát hiện mức nghiêm trọng/cao "
         "mới hay mở lại; cải thiện khi số đã khắc phục nhiều hơn; còn lại là không đổi.",
         "Rule: regressed when more findings opened (new + reopened) than resolved, or any new or reopened "
         "finding is critical/high; improved when more were resolved; otherwise unchanged.")
_FOOTER = ("Thư tự động của SOC Đồng Nai, gửi sau mỗi lượt quét theo lịch; không trả lời thư này.",
           "Automatic message from the Đồng Nai SOC, sent after each scheduled scan; do not reply.")


def change_text(summary: ChangeSummary) -> str:
    """The plain-text body: the run, then each non-empty section worst first (at most MAX_LISTED each)."""
    lines = ["Báo cáo thay đổi sau lượt quét — SOC Đồng Nai", "Change report after the scan — Đồng Nai SOC", ""]
    lines += _facts(summary)
    if summary.run_status is not RunStatus.COMPLETE:
        lines += ["", *_INCOMPLETE]
    sections = _sections(summary)
    if not sections:
        lines += ["", "Không có thay đổi. / No changes."]
    for section in sections:
        lines += ["", f"{section.vi} / {section.en} ({len(section.findings)})"]
        for index, finding in enumerate(section.findings[:MAX_LISTED], 1):
            severity_vi, severity_en = _SEVERITY[finding.severity]
            lines += [f"  {index}. [{severity_vi} / {severity_en}] {_v(finding.portal_url)} · {_v(finding.check_id)}",
                      f"     {_v(finding.title_vi)}", f"     {_v(finding.title_en)}"]
            if finding.evidence:
                lines.append(f"     Bằng chứng / Evidence: {_evidence(finding)}")
            lines.append(f"     {_when(finding)} · Mã / ID: {_v(finding.fingerprint)}")
        if (more := len(section.findings) - MAX_LISTED) > 0:
            lines.append(f"  … và {more} mục khác / … and {more} more")
    lines += ["", "—", *_RULE, *_FOOTER]
    return "\n".join(lines) + "\n"


def change_html(summary: ChangeSummary) -> str:
    """The HTML alternative: the same content; every string made visible, then HTML-escaped."""

    def h(text: str) -> str:
        return html.escape(_v(text))

    vi, en = _VERDICT[summary.verdict]
    parts = ["<!DOCTYPE html>", '<html lang="vi"><head><meta charset="utf-8">',
             f"<title>{h(change_subject(summary))}</title></head><body>",
             "<h2>Báo cáo thay đổi sau lượt quét / Change report after the scan</h2>",
             f"<p><strong>{h(vi)} / {h(en)}</strong></p><ul>"]
    parts += [f"<li>{h(line)}</li>" for line in _facts(summary)[1:]]
    parts.append("</ul>")
    if summary.run_status is not RunStatus.COMPLETE:
        parts.append(f"<p>{h(_INCOMPLETE[0])}<br>{h(_INCOMPLETE[1])}</p>")
    for section in _sections(summary):
        parts.append(f"<h3>{h(section.vi)} / {h(section.en)} ({len(section.findings)})</h3><ol>")
        for finding in section.findings[:MAX_LISTED]:
            severity_vi, severity_en = _SEVERITY[finding.severity]
            parts.append(
                f"<li><strong>[{h(severity_vi)} / {h(severity_en)}]</strong> {h(finding.portal_url)} · "
                f"<code>{h(finding.check_id)}</code><br>{h(finding.title_vi)}<br>{h(finding.title_en)}"
                + (f"<br>Bằng chứng / Evidence: <code>{html.escape(_evidence(finding))}</code>"
                   if finding.evidence else "")
                + f"<br>{h(_when(finding))} · Mã / ID: <code>{h(finding.fingerprint)}</code></li>")
        parts.append("</ol>")
        if (more := len(section.findings) - MAX_LISTED) > 0:
            parts.append(f"<p>… và {more} mục khác / … and {more} more</p>")
    parts.append(f"<hr><p><small>{h(_RULE[0])}<br>{h(_RULE[1])}<br>{h(_FOOTER[0])}<br>{h(_FOOTER[1])}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def change_message(summary: ChangeSummary, settings: SmtpSettings, now: datetime) -> EmailMessage:
    """The change e-mail of a run, from `settings.sender` to `settings.recipients`, dated `now` (local time).

    MailSettingsError when the sender or a recipient is not a plain address. With no recipients the
    message has no To header (`send_message` then reports e-mail as not configured).
    """
    if now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime, not {now.isoformat()}")
    sender, recipients = _addresses(settings)
    message = EmailMessage()
    message["Subject"] = change_subject(summary)
    message["From"] = sender
    if recipients:
        message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now.astimezone(LOCAL_ZONE))
    message["Message-ID"] = make_msgid(domain=MESSAGE_ID_DOMAIN)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, no vacation notices
    message["X-SOC-Run"] = _v(summary.run_id)
    message["X-SOC-Verdict"] = summary.verdict.value
    # quoted-printable keeps the body 7-bit: any relay carries it, whatever 8BITMIME it offers
    message.set_content(change_text(summary), charset="utf-8", cte="quoted-printable")
    message.add_alternative(change_html(summary), subtype="html", charset="utf-8", cte="quoted-printable")
    return message


# --- delivery ---------------------------------------------------------------------------------------


class _Failure(Exception):
    """One attempt failed; the text says what, in words."""


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """The system's trust store plus `settings.ca_file`; host names and certificates are verified."""
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {_cut(_v(text), MAX_SERVER_TEXT)}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _cut(_v(str(exc) or type(exc).__name__), MAX_SERVER_TEXT)


def _close(smtp: smtplib.SMTP) -> None:
    """End the session politely; a failing QUIT after the message was taken changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _deliver(message: EmailMessage, settings: SmtpSettings, context: ssl.SSLContext, sender: str,
             recipients: list[str]) -> dict[str, str]:
    """One attempt: connect, upgrade, log in, send. Returns refused recipient → why; _Failure otherwise."""
    assert settings.host is not None
    where = f"{settings.host}:{settings.port}"
    helo = "soc-notify.local"  # a fixed EHLO name: socket.getfqdn() would ask DNS at every send
    try:
        smtp = (smtplib.SMTP_SSL(settings.host, settings.port, local_hostname=helo, timeout=settings.timeout,
                                 context=context) if settings.ssl
                else smtplib.SMTP(settings.host, settings.port, local_hostname=helo, timeout=settings.timeout))
    except (OSError, smtplib.SMTPException) as exc:
        raise _Failure(f"cannot connect to smtp {where}: {_reason(exc)}") from None
    try:
        if settings.starttls and not settings.ssl:
            try:
                smtp.starttls(context=context)
            except smtplib.SMTPNotSupportedError:
                raise _Failure(f"smtp {where} does not offer STARTTLS (smtp.starttls is on)") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise _Failure(f"STARTTLS with smtp {where} failed: {_reason(exc)}") from None
        if settings.username:
            password = settings.password.get_secret_value() if settings.password is not None else ""
            try:
                smtp.login(settings.username, password)
            except smtplib.SMTPAuthenticationError as exc:
                raise _Failure(f"authentication refused by smtp {where} for user {_v(settings.username)!r}: "
                               f"{_reason(exc)}") from None
            except smtplib.SMTPNotSupportedError:
                raise _Failure(f"smtp {where} offers no authentication (AUTH) on this connection") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise _Failure(f"authentication with smtp {where} failed: {_reason(exc)}") from None
        try:
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _Failure("; ".join(f"recipient refused: {address}: {_reason(smtplib.SMTPResponseException(*reply))}"
                                     for address, reply in exc.recipients.items())) from None
        except smtplib.SMTPSenderRefused as exc:
            raise _Failure(f"sender refused by smtp {where}: {sender}: {_reason(exc)}") from None
        except smtplib.SMTPDataError as exc:
            raise _Failure(f"message refused by smtp {where}: {_reason(exc)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _Failure(f"sending through smtp {where} failed: {_reason(exc)}") from None
    finally:
        _close(smtp)
    return {address: _reason(smtplib.SMTPResponseException(*reply)) for address, reply in refused.items()}


def _not_configured(settings: SmtpSettings) -> str | None:
    if settings.host is None:
        return "e-mail not configured: no SMTP host (SOC_SMTP__HOST)"
    if not settings.recipients:
        return "e-mail not configured: no recipients (SOC_SMTP__RECIPIENTS)"
    if settings.username and settings.password is None:
        return "e-mail not configured: smtp.username is set but smtp.password is not (SOC_SMTP__PASSWORD)"
    if settings.username and not (settings.username.isascii() and settings.password is not None
                                  and settings.password.get_secret_value().isascii()):
        # smtplib writes AUTH in ASCII only: refused here, with no exception carrying the secret around
        return ("e-mail not configured: smtp.username and smtp.password may hold only ASCII characters "
                "(the SMTP client cannot send others)")
    if settings.username and not (settings.ssl or settings.starttls):
        return ("e-mail refused: smtp.username needs smtp.starttls or smtp.ssl — the password would cross the "
                "network in clear")
    return None


def send_message(message: EmailMessage, settings: SmtpSettings,
                 sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """Deliver `message` to `settings.recipients` through `settings.host`, in up to `settings.attempts` tries.

    Implicit TLS when `settings.ssl` (STARTTLS is then not used), else STARTTLS when `settings.starttls`;
    the server's certificate is verified against the system's CAs plus `settings.ca_file`. Between tries
    it waits `retry_seconds`, doubled each time (`sleep` is injectable). Every failure is retried. Settings
    that cannot work (no host, no recipients, a bad address, an unreadable CA file) give attempts=0.
    """
    recipients = list(settings.recipients)
    problem = _not_configured(settings)
    if problem is None:
        try:
            sender, recipients = _addresses(settings)
            context = tls_context(settings)
        except MailSettingsError as exc:
            problem = str(exc)
        except (OSError, ssl.SSLError) as exc:
            problem = f"smtp.ca_file: {settings.ca_file}: cannot load CA certificates: {_reason(exc)}"
    if problem is not None:
        return DeliveryReport(delivered=False, attempts=0, errors=[problem], recipients=recipients)
    secret = settings.password.get_secret_value() if settings.password is not None else ""

    def scrub(text: str) -> str:  # a server echoing what it was sent must not put the password in a report
        return text.replace(secret, "***") if secret else text

    errors: list[str] = []
    wait = settings.retry_seconds
    for attempt in range(1, settings.attempts + 1):
        try:
            refused = _deliver(message, settings, context, sender, recipients)
        except Exception as exc:  # whatever went wrong is one failed attempt, told in words, not a crash of the job
            what = str(exc) if isinstance(exc, _Failure) else f"unexpected {type(exc).__name__}: {_reason(exc)}"
            error = scrub(f"attempt {attempt}/{settings.attempts}: {what}")
            log.warning("change e-mail not delivered: %s", error)
            errors.append(error)
            if attempt < settings.attempts:
                sleep(wait)
                wait *= 2
            continue
        errors += [scrub(f"recipient refused: {address}: {why}") for address, why in refused.items()]
        log.info("change e-mail delivered to %d of %d recipients in %d attempt(s)",
                 len(recipients) - len(refused), len(recipients), attempt)
        return DeliveryReport(delivered=True, attempts=attempt, errors=errors, recipients=recipients,
                              refused=list(refused))
    return DeliveryReport(delivered=False, attempts=settings.attempts, errors=errors, recipients=recipients)
