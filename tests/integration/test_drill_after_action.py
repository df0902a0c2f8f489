"""The after-action report of a drill: a library scenario run in scripted mode into a real store, rendered as
HTML and as an A4 PDF (read back with pypdf, rasterised with pdftoppm), hostile scenario text escaped, and
nothing fetched while printing."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import threading
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from drills.responses import Response, ResponsesFile
from drills.scenario import parse_offset
from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import FixedClock
from soc.core.drill_records import CorrectiveAction, Participant
from soc.documents import html_to_pdf
from soc.services import drill_reports
from soc.services.context import ServiceContext, ServiceError
from soc.services.drills import Finished, create_session, run_scripted

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "playbooks" / "qlvb-ransomware.yaml"
TITLE = "Khai thác lỗ hổng Hệ thống Quản lý văn bản dẫn tới mã độc tống tiền"
DRILL_DAY = date(2026, 11, 25)
"""Under luat116-2025 (in force from 2026-07-01): the initial report is due 24 h after detection."""
PARTICIPANTS = [
    Participant(name="Nguyễn Văn Hùng", role="incident_commander", agency="sokhcn"),
    Participant(name="Trần Thị Ngọc Ánh", role="soc_analyst", agency="sokhcn"),
    Participant(name="Lê Quốc Dũng", role="system_owner", agency="vpubnd"),
    Participant(name="Phạm Thu Hường", role="communications", agency="vpubnd"),
    Participant(name="Võ Minh Đức", role="leadership", agency="ubnd"),
    Participant(name="Đặng Hoài Phương", role="authority_liaison", agency="sokhcn"),
]
RESPONSES = ResponsesFile(participants=PARTICIPANTS, responses=[
    Response(at=parse_offset("+10m"), expectation="e-triage", role="soc_analyst"),  # met (due +30m)
    Response(at=parse_offset("+1h30m"), expectation="e-escalate", role="soc_analyst"),  # late (due +1h)
    Response(at=parse_offset("+1h"), expectation="e-classify", role="incident_commander", quality="partial"),  # partly
    Response(at=parse_offset("+2h20m"), decision="d-isolate", option="isolate-now"),
    Response(at=parse_offset("+2h40m"), expectation="e-contain", role="incident_commander"),  # met (due +4h)
    Response(at=parse_offset("+3h"), expectation="e-initial-report", role="authority_liaison"),  # met (due +24h)
])


def normal(text: str) -> str:
    """NFC, whitespace runs as one space (a table cell wraps its text over lines)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def pdf_text(pdf: bytes) -> str:
    return normal(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages))


def base_fonts(pdf: bytes) -> set[str]:
    """The /BaseFont of every font the pages use, without the subset prefix ('ABCDEF+')."""
    names = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources: Any = page["/Resources"].get_object()
        fonts: Any = resources.get("/Font", {})
        for ref in fonts.get_object().values():
            font = ref.get_object()
            names.add(str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1])
            for descendant in font.get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, f"{font['/BaseFont']} not embedded"
    return names


def screenshot_dir() -> Path:
    """$SOC_SCREENSHOTS, else `.soc/screenshots/` in the repository (gitignored), as the browser tests use."""
    configured = os.environ.get("SOC_SCREENSHOTS")
    directory = Path(configured) if configured else REPO / ".soc" / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def finished(context: ServiceContext) -> Finished:
    return run_scripted(context, SCENARIO, RESPONSES, drill_date=DRILL_DAY, facilitator="Bùi Thị Thanh Trúc")


def test_the_html_report_has_every_part_vietnamese_first(context: ServiceContext, finished: Finished) -> None:
    html = drill_reports.report_html(context, finished.session.id)
    card = finished.scorecard
    assert card.score.met == 3 and card.score.partly == 1 and card.score.late == 1 and card.score.missed == 7
    assert '<html lang="vi">' in html
    for heading in ("Báo cáo sau diễn tập", "Điểm mạnh <span class=\"sub\">/ Strengths",
                    "Nội dung cần cải thiện <span class=\"sub\">/ Areas for improvement",
                    "Kế hoạch khắc phục <span class=\"sub\">/ Improvement plan", "Thời gian ứng phó",
                    "Điểm theo giai đoạn", "Điểm theo mục tiêu", "Điểm theo vai trò", "Diễn biến và quyết định"):
        assert heading in html, heading
    assert "Đội ứng cứu sự cố an toàn thông tin tỉnh Đồng Nai" in html
    assert f"{card.score.value:.1f}".replace(".", ",") in html
    assert "25/11/2026" in html  # the drill date, dd/mm/yyyy
    assert "Bùi Thị Thanh Trúc" in html and "Đặng Hoài Phương" in html
    assert "Đầu mối liên lạc với cơ quan chức năng" in html  # the participant's role, from the rule set
    assert "Công an tỉnh Đồng Nai" in html  # an authority of luat116-2025 on 25/11/2026
    assert "Báo cáo ban đầu sự cố: 24 giờ" in html  # the reporting duty in force on the drill date
    assert "+2 giờ 40 phút" in html  # time to contain on the exercise clock
    assert "Cô lập ngay, chuyển sang gửi văn bản giấy/thư điện tử công vụ" in html  # the option chosen
    strengths = html.split("Điểm mạnh <span")[1].split("Nội dung cần cải thiện <span")[0]
    assert "Xác minh cảnh báo, mở phiếu sự cố" in strengths and "Báo Chỉ huy ứng cứu" not in strengths
    improvements = html.split("Nội dung cần cải thiện <span")[1].split("Kế hoạch khắc phục <span")[0]
    assert "Báo Chỉ huy ứng cứu sự cố và chủ quản hệ thống" in improvements and "Muộn" in improvements
    english = drill_reports.report_html(context, finished.session.id, "en")
    assert '<html lang="en">' in english and "Strengths <span class=\"sub\">/ Điểm mạnh" in english
    assert "+2 h 40 min" in english and f"{card.score.value:.1f}" in english


def test_the_pdf_report_holds_the_score_the_title_and_every_corrective_action(
        context: ServiceContext, finished: Finished) -> None:
    pdf = drill_reports.report_pdf(context, finished.session.id)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    box = reader.pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == (210, 297)  # A4
    text = pdf_text(pdf)
    assert normal(TITLE) in text  # with its diacritics, as extracted from the embedded fonts
    assert f"{finished.scorecard.score.value:.1f}".replace(".", ",") + "/100" in text
    assert f"Trang 1/{len(reader.pages)}" in text and f"Trang {len(reader.pages)}/{len(reader.pages)}" in text
    actions: list[CorrectiveAction] = finished.actions
    assert len(actions) == 9
    for action in actions:
        assert normal(action.text_vi) in text, action.text_vi
        assert action.owner_agency and action.owner_agency in text
        assert f"{action.due:%d/%m/%Y}" in text
    fonts = base_fonts(pdf)
    assert fonts and all(name.startswith("Noto") for name in fonts), fonts
    assert {"Noto-Sans", "Noto-Serif"} <= fonts, fonts

    directory = screenshot_dir()
    for old in directory.glob("after_action-*.png"):
        old.unlink()
    (directory / "after_action.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(directory / "after_action.pdf"),
                    str(directory / "after_action")], check=True, timeout=120)
    pages = sorted(directory.glob("after_action-*.png"))
    assert len(pages) == len(reader.pages)
    assert all(page.stat().st_size > 10_000 for page in pages)  # a page with text, not a blank


def test_the_english_pdf_footer_and_headings(context: ServiceContext, finished: Finished) -> None:
    pdf = drill_reports.report_pdf(context, finished.session.id, "en")
    text = pdf_text(pdf)
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert f"Page 1/{pages}" in text and "Improvement plan / Kế hoạch khắc phục" in text
    assert normal("Document management system exploited, leading to ransomware") in text
    for action in finished.actions:
        assert normal(action.text_en) in text, action.text_en


def test_hostile_scenario_text_is_escaped(context: ServiceContext, tmp_path: Path) -> None:
    hostile = '<script>alert("aar")</script><img src="http://127.0.0.1:9/x.png"> & \u202ecod.exe'
    source = SCENARIO.read_text(encoding="utf-8").replace(
        '  vi: "Khai thác lỗ hổng Hệ thống Quản lý văn bản dẫn tới mã độc tống tiền"',
        f"  vi: '{hostile}'", 1)
    assert hostile in source
    path = tmp_path / "hostile.yaml"
    path.write_text(source, encoding="utf-8")
    done = run_scripted(context, path, ResponsesFile(), drill_date=DRILL_DAY)
    html = drill_reports.report_html(context, done.session.id)
    assert "<script>" not in html and '<img src="http' not in html
    assert "&lt;script&gt;alert(&#34;aar&#34;)&lt;/script&gt;&lt;img src=" in html
    assert "\u202e" not in html and "\\u202ecod.exe" in html  # a bidi override is shown, not obeyed
    assert "&amp;" in html
    text = pdf_text(drill_reports.report_pdf(context, done.session.id))
    assert '<script>alert("aar")</script>' in text  # printed as text


def test_a_session_not_ended_or_unknown_has_no_report(context: ServiceContext) -> None:
    planned = create_session(context, SCENARIO, drill_date=DRILL_DAY)
    with pytest.raises(ServiceError, match="has not ended"):
        drill_reports.report_html(context, planned.id)
    with pytest.raises(ServiceError, match="no drill session"):
        drill_reports.report_pdf(context, "nope")


class Listener:
    """A loopback TCP port that counts the connections it gets (nothing should come)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            client.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.socket.close()


PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
         "hKmMIQAAAABJRU5ErkJggg==")


def test_printing_fetches_nothing_but_data_and_the_templates(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "extra.css").write_text('p.mark::after { content: " EXTRA-LOADED" }', encoding="utf-8")
    outside = tmp_path / "secret.css"
    outside.write_text('p.mark::before { content: "LEAKED " }', encoding="utf-8")
    (templates / "escape.css").symlink_to(outside)
    listener = Listener()
    try:
        html = (f'<html><head><link rel="stylesheet" href="http://127.0.0.1:{listener.port}/a.css">'
                f'<link rel="stylesheet" href="extra.css"><link rel="stylesheet" href="escape.css">'
                f'<link rel="stylesheet" href="../secret.css"><link rel="stylesheet" href="file:///etc/hostname">'
                f'</head><body><p class="mark">Tiếng Việt có dấu: ệ ữ ỹ</p>'
                f'<img src="http://127.0.0.1:{listener.port}/x.png"><img src="{PIXEL}"></body></html>')
        with caplog.at_level("WARNING"):
            pdf = html_to_pdf(html, base_url=str(templates))
    finally:
        listener.close()
    assert listener.connections == 0
    refused = " ".join(r.getMessage() for r in caplog.records if "refused" in r.getMessage())
    for url in (f"127.0.0.1:{listener.port}/a.css", f"127.0.0.1:{listener.port}/x.png", "escape.css",
                "secret.css", "/etc/hostname"):
        assert url in refused, url
    assert "extra.css" not in refused
    reader = PdfReader(io.BytesIO(pdf))
    resources: Any = reader.pages[0]["/Resources"].get_object()
    images: Any = resources.get("/XObject", {})
    assert len(images) == 1  # the data: pixel, and not the refused one
    text = normal(reader.pages[0].extract_text())
    assert "Tiếng Việt có dấu: ệ ữ ỹ EXTRA-LOADED" in text and "LEAKED" not in text


def test_cli_writes_the_report(db_path: Path, clock: FixedClock, context: ServiceContext, finished: Finished,
                               tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "reports" / "aar.html"
    result = runner.invoke(app, ["drill", "report", finished.session.id, "--format", "html", "--lang", "en",
                                 "--out", str(out), "--db", str(db_path)], obj=CliState(clock))
    assert result.exit_code == 0, result.output
    assert '<html lang="en">' in out.read_text(encoding="utf-8")
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    pdf = tmp_path / "aar.pdf"
    result = runner.invoke(app, ["drill", "report", finished.session.id, "--out", str(pdf), "--db", str(db_path)],
                           obj=CliState(clock))
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF-") and not list(tmp_path.glob(".aar.pdf.*"))
    result = runner.invoke(app, ["drill", "report", "nope", "--out", str(tmp_path / "x.pdf"), "--db", str(db_path)],
                           obj=CliState(clock))
    assert result.exit_code == 2 and "no drill session" in result.output
    assert not (tmp_path / "x.pdf").exists()
