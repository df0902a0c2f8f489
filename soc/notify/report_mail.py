"""The e-mail that delivers a report to leadership: the PDF attached, a short bilingual summary in the body.

Delivery is `soc.notify.mail.send_message` (STARTTLS or implicit TLS, authentication, retries), to
`smtp.report_recipients` — or, when that list is empty, to the change e-mail's `smtp.recipients`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Final

from soc.core.clock import LOCAL_ZONE
from soc.core.settings import SmtpSettings
from soc.core.untrusted import visible
from soc.notify.mail import MESSAGE_ID_DOMAIN, _addresses

ROMAN: Final = {1: "I", 2: "II", 3: "III", 4: "IV"}
_FOOTER: Final = ("Thư tự động của SOC Đồng Nai; báo cáo đầy đủ ở tệp PDF đính kèm và trên trang Báo cáo của hệ "
                  "thống. Không trả lời thư này.",
                  "Automatic message from the Đồng Nai SOC; the full report is the attached PDF, also on the "
                  "dashboard's Reports page. Do not reply.")


def report_settings(settings: SmtpSettings) -> SmtpSettings:
    """The SMTP settings with the report's recipients in `recipients` (what `send_message` delivers to)."""
    if not settings.report_recipients:
        return settings
    return settings.model_copy(update={"recipients": list(settings.report_recipients)})


def month_subject(year: int, month: int) -> str:
    """'Báo cáo an toàn thông tin tháng 11/2026 — SOC Đồng Nai'."""
    return f"Báo cáo an toàn thông tin tháng {month:02d}/{year} — SOC Đồng Nai"


def quarter_subject(year: int, quarter: int) -> str:
    """'Báo cáo an toàn thông tin quý IV/2026 — SOC Đồng Nai'."""
    return f"Báo cáo an toàn thông tin quý {ROMAN[quarter]}/{year} — SOC Đồng Nai"


def report_message(subject: str, lines: Sequence[str], pdf: bytes, filename: str, settings: SmtpSettings,
                   now: datetime, report_id: str) -> EmailMessage:
    """The report's e-mail from `settings.sender` to `settings.recipients` (see `report_settings`), dated `now`.

    `lines`: the summary (one line each; made visible, never a header). MailSettingsError for an address that
    is not one.
    """
    if now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime, not {now.isoformat()}")
    sender, recipients = _addresses(settings)
    message = EmailMessage()
    message["Subject"] = visible(subject)
    message["From"] = sender
    if recipients:
        message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now.astimezone(LOCAL_ZONE))
    message["Message-ID"] = make_msgid(domain=MESSAGE_ID_DOMAIN)
    message["Auto-Submitted"] = "auto-generated"
    message["X-SOC-Report"] = visible(report_id)
    body = [visible(subject), "", *(visible(line) for line in lines), "", "—", *_FOOTER]
    message.set_content("\n".join(body) + "\n", charset="utf-8", cte="quoted-printable")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename)
    return message
