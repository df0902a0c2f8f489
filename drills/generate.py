"""Draft a scenario from the province's open findings: the exposure that would most likely start a real incident
(an exposed RDP or database port, an expired certificate, a missing trust label, a system in operation without
an approved level), with the affected portal, system and owner filled in. Pure.

The draft is a complete, valid scenario for the team to review and save: a story skeleton per kind of exposure
(how the attack starts and escalates), the finding's own evidence as an artefact (bounded — it is text a
portal controls), and the national phases with reporting deadlines from the rule set. Its corrective actions
are confirmed when the findings it was drafted from are resolved by a later scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml

from drills.scenario import Scenario
from soc.core.models import FindingStatus, Severity, StoredFinding

MAX_EVIDENCE = 1_500
"""Characters of a finding's evidence quoted in an artefact."""
RISKY_DB_PORTS = {1433: "MS SQL", 1521: "Oracle", 3306: "MySQL", 5432: "PostgreSQL", 6379: "Redis",
                  9200: "Elasticsearch", 27017: "MongoDB"}


@dataclass(frozen=True)
class Exposure:
    """One open finding the draft can be built on, with what it is about."""

    finding: StoredFinding
    kind: str
    """rdp | database | port | certificate | label | approval"""
    agency: str | None
    system_id: str | None
    system_name: str | None
    level: int


PRIORITY = {"rdp": 0, "database": 1, "port": 2, "approval": 3, "certificate": 4, "label": 5}
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3, Severity.INFO: 4}


def kind_of(finding: StoredFinding) -> str | None:
    """Which story a finding can start (None: not one the builder drafts from)."""
    check = finding.check_id
    if check in ("ports.risky_open", "ports.unexpected_open"):
        port = int(finding.detail) if finding.detail.isdigit() else 0
        if port == 3389:
            return "rdp"
        return "database" if port in RISKY_DB_PORTS else "port"
    if check in ("tls.cert.expired", "tls.cert.expiring_soon", "tls.cert.untrusted", "tls.cert.self_signed"):
        return "certificate"
    if check in ("trustlabel.missing", "trustlabel.expired", "trustlabel.revoked"):
        return "label"
    if check == "approval.missing_in_operation":
        return "approval"
    return None


def exposures(findings: Sequence[StoredFinding], owners: Mapping[str, str],
              systems: Mapping[str, tuple[str, str | None, int]], agency: str | None = None) -> list[Exposure]:
    """The open findings a draft can start from, most telling first (kind, then severity, then age).

    `owners`: subject → agency; `systems`: subject → (system id, name, level)."""
    found = []
    for finding in findings:
        kind = kind_of(finding)
        if kind is None or finding.status not in (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED):
            continue
        owner = finding.assignee or owners.get(finding.portal_url)
        if agency is not None and owner != agency:
            continue
        system_id, name, level = systems.get(finding.portal_url, (None, None, 2))
        found.append(Exposure(finding, kind, owner, system_id, name, level))
    return sorted(found, key=lambda e: (PRIORITY[e.kind], SEVERITY_ORDER.get(e.finding.severity, 9),
                                        e.finding.first_seen))


def _t(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en}


def _story(exposure: Exposure) -> dict[str, Any]:
    """The kind-specific part: how it starts, how it escalates, what fixes the exposure."""
    subject = exposure.finding.portal_url
    port = exposure.finding.detail
    if exposure.kind == "rdp":
        return {
            "title": _t(f"Dò mật khẩu RDP lộ ra Internet tại {subject}", f"RDP brute force on {subject}"),
            "alert": _t(f"Giám sát ghi nhận 4.200 lần đăng nhập RDP thất bại vào {subject} cổng {port} trong 20 phút "
                        "từ nhiều địa chỉ nước ngoài.",
                        f"Monitoring sees 4,200 failed RDP logins to {subject} port {port} in 20 minutes from many "
                        "foreign addresses."),
            "escalate": _t("Một lần đăng nhập thành công bằng tài khoản 'admin' lúc 02:13; sau đó có tiến trình "
                           "lạ tạo bản sao bóng (shadow copy) bị xoá.",
                           "One login succeeds as 'admin' at 02:13; then an unknown process deletes the shadow "
                           "copies."),
            "fix": _t(f"Đóng cổng {port} ra Internet, chỉ cho truy cập quản trị qua VPN có xác thực đa yếu tố",
                      f"Close port {port} to the Internet; allow administration only over VPN with MFA"),
        }
    if exposure.kind in ("database", "port"):
        service = RISKY_DB_PORTS.get(int(port) if port.isdigit() else 0, "dịch vụ / service")
        return {
            "title": _t(f"Cơ sở dữ liệu ({service}, cổng {port}) lộ ra Internet tại {subject} bị truy cập trái phép",
                        f"Database ({service}, port {port}) exposed on {subject} accessed without authorisation"),
            "alert": _t(f"Một nhà nghiên cứu báo qua thư điện tử: cổng {port} ({service}) của {subject} trả lời từ "
                        "Internet và có thể đọc dữ liệu.",
                        f"A researcher e-mails: port {port} ({service}) of {subject} answers from the Internet and "
                        "its data can be read."),
            "escalate": _t("Nhật ký cho thấy lệnh xuất toàn bộ bảng dữ liệu lúc 03:40 từ một địa chỉ lạ; một diễn "
                           "đàn đăng mẫu dữ liệu.",
                           "Logs show a full table export at 03:40 from an unknown address; a forum posts a "
                           "sample of the data."),
            "fix": _t(f"Chặn cổng {port} ở tường lửa biên, bật xác thực và giới hạn địa chỉ được phép",
                      f"Block port {port} at the edge firewall, enable authentication and restrict addresses"),
        }
    if exposure.kind == "certificate":
        return {
            "title": _t(f"Chứng chỉ số của {subject} lỗi, người dân bị dẫn tới trang giả mạo",
                        f"Certificate of {subject} broken; citizens are lured to a fake site"),
            "alert": _t(f"Đường dây nóng nhận nhiều phản ánh: trình duyệt cảnh báo 'kết nối không an toàn' khi vào "
                        f"{subject}.",
                        f"The hotline gets many calls: browsers warn 'connection not secure' on {subject}."),
            "escalate": _t("Một trang giả mạo có tên miền gần giống được quảng cáo trên mạng xã hội, thu thập "
                           "thông tin đăng nhập của người dân; người dân đã quen bỏ qua cảnh báo.",
                           "A look-alike site is advertised on social media and harvests citizens' logins; "
                           "citizens have learnt to click through warnings."),
            "fix": _t("Cấp lại chứng chỉ hợp lệ, theo dõi hạn chứng chỉ tự động và gia hạn trước 30 ngày",
                      "Reissue a valid certificate, monitor expiry automatically and renew 30 days ahead"),
        }
    if exposure.kind == "label":
        return {
            "title": _t(f"Trang giả mạo {subject} lợi dụng việc chưa gắn nhãn Tín nhiệm mạng",
                        f"Fake copy of {subject} exploits the missing trust label"),
            "alert": _t(f"Người dân gửi ảnh chụp một trang giống hệt {subject} yêu cầu nộp lệ phí qua chuyển khoản.",
                        f"A citizen sends a screenshot of a page identical to {subject} asking for fees by bank "
                        "transfer."),
            "escalate": _t("Đã có 37 người chuyển tiền; báo chí hỏi vì sao cổng chính thức không có dấu hiệu nhận "
                           "biết (nhãn Tín nhiệm mạng).",
                           "37 people have paid; the press asks why the official portal has no mark to tell it "
                           "apart (trust label)."),
            "fix": _t("Đăng ký và gắn nhãn Tín nhiệm mạng hợp lệ; cảnh báo người dân nhận biết trang chính thức",
                      "Register and display a valid trust label; teach citizens to tell the official site"),
        }
    return {
        "title": _t(f"Sự cố trên hệ thống đang vận hành chưa được phê duyệt cấp độ ({subject})",
                    f"Incident on a system in operation without an approved level ({subject})"),
        "alert": _t("Đơn vị vận hành báo hệ thống chậm bất thường và có tài khoản quản trị lạ.",
                    "The operator reports the system is abnormally slow and has an unknown admin account."),
        "escalate": _t("Không có hồ sơ cấp độ, không có phương án bảo đảm an toàn và không rõ ai chịu trách nhiệm "
                       "xử lý; dữ liệu có thể đã bị sao chép.",
                       "No level file, no security plan and no clear owner of the response; data may have been "
                       "copied."),
        "fix": _t("Lập hồ sơ đề xuất cấp độ, trình phê duyệt và triển khai phương án bảo đảm an toàn theo cấp độ",
                  "File the level proposal, get it approved and put the level's security plan in place"),
    }


def draft(chosen: Sequence[Exposure], drill_date: date, scenario_id: str | None = None) -> dict[str, Any]:
    """The scenario (as YAML-ready data) built on the first exposure, quoting the others of the same owner."""
    if not chosen:
        raise ValueError("no open finding to draft a scenario from")
    main = chosen[0]
    story = _story(main)
    subject = main.finding.portal_url
    evidence = main.finding.evidence[:MAX_EVIDENCE]
    others = [e for e in chosen[1:4] if e.agency == main.agency]
    related = "\n".join(f"- [{e.finding.severity.value}] {e.finding.check_id} {e.finding.portal_url}: "
                        f"{e.finding.evidence[:300]}" for e in others) or "(không có / none)"
    system = main.system_name or subject
    injects: list[dict[str, Any]] = [
        {"id": "inj-alert", "phase": "detection", "title": _t("Cảnh báo ban đầu", "First alert"), "at": "+0m",
         "to": ["soc_analyst"], "read_aloud": story["alert"],
         "questions": [_t("Sự cố thật hay cảnh báo nhầm? Kiểm tra gì trước?", "Real incident or false alarm? What "
                          "do you check first?")],
         "hint": _t("SOC đã có phát hiện mở về đúng điểm yếu này.", "The SOC already has an open finding about "
                    "this very weakness.")},
        {"id": "inj-finding", "phase": "assessment", "title": _t("Phát hiện của SOC", "The SOC's finding"),
         "at": "+45m", "to": ["soc_analyst", "system_owner"],
         "read_aloud": _t(f"Kho phát hiện của SOC có '{main.finding.title_vi}' trên {subject} từ "
                          f"{main.finding.first_seen:%d/%m/%Y}, chưa được xử lý.",
                          f"The SOC's findings hold '{main.finding.title_en}' on {subject} since "
                          f"{main.finding.first_seen:%d/%m/%Y}, not yet fixed."),
         "artefacts": [{"kind": "alert", "title": _t("Bằng chứng của phát hiện", "Finding evidence"),
                        "content": f"{main.finding.check_id} [{main.finding.severity.value}] {subject}\n{evidence}"},
                       {"kind": "document", "title": _t("Các phát hiện mở khác của đơn vị",
                                                        "The owner's other open findings"), "content": related}]},
        {"id": "inj-escalate", "phase": "containment", "title": _t("Sự cố leo thang", "The incident escalates"),
         "at": "+3h", "to": ["incident_commander", "system_owner"], "read_aloud": story["escalate"],
         "questions": [_t("Ngừng dịch vụ để ngăn chặn hay giữ dịch vụ cho người dân?",
                          "Stop the service to contain it, or keep it up for citizens?")]},
        {"id": "inj-contained", "phase": "containment", "title": _t("Đã ngăn chặn", "Contained"),
         "trigger": {"decision": "d-contain", "option": "contain-now", "delay": "+1h"},
         "read_aloud": _t("Điểm yếu đã được cô lập; dịch vụ tạm dừng, người dân được hướng dẫn kênh thay thế.",
                          "The weakness is isolated; the service is paused and citizens are pointed to another "
                          "channel.")},
        {"id": "inj-spread", "phase": "containment", "title": _t("Thiệt hại lan rộng", "The damage spreads"),
         "trigger": {"decision": "d-contain", "option": "keep-running", "delay": "+2h"},
         "to": ["incident_commander", "leadership"],
         "read_aloud": _t("Kẻ tấn công tiếp tục khai thác trong lúc dịch vụ vẫn chạy; phạm vi ảnh hưởng tăng gấp ba.",
                          "The attacker keeps going while the service runs; the impact triples.")},
        {"id": "inj-leadership", "phase": "assessment", "title": _t("Lãnh đạo yêu cầu báo cáo",
                                                                    "Leadership asks for a briefing"),
         "at": "+6h", "to": ["incident_commander", "leadership"],
         "read_aloud": _t(f"Lãnh đạo UBND tỉnh hỏi về ảnh hưởng tới {system} và thời gian khôi phục.",
                          f"The provincial leadership asks about the impact on {system} and the recovery time.")},
        {"id": "inj-rootcause", "phase": "eradication", "title": _t("Nguyên nhân gốc", "Root cause"), "at": "+1d",
         "to": ["system_owner"],
         "read_aloud": _t(f"Nguyên nhân gốc là phát hiện đã biết: {main.finding.title_vi}. Cần: {story['fix']['vi']}.",
                          f"The root cause is the known finding: {main.finding.title_en}. Needed: "
                          f"{story['fix']['en']}.")},
        {"id": "inj-recovery", "phase": "recovery", "title": _t("Khôi phục dịch vụ", "Service recovery"),
         "at": "+2d", "to": ["system_owner", "incident_commander"],
         "read_aloud": _t("Hệ thống đã được khắc phục trên môi trường sạch; cần kiểm tra trước khi mở lại.",
                          "The system is fixed on a clean environment; check it before reopening.")},
        {"id": "inj-closing", "phase": "closing_report", "title": _t("Báo cáo kết thúc", "Closing report"),
         "at": "+3d", "to": ["authority_liaison"],
         "read_aloud": _t("Cơ quan chức năng đề nghị gửi báo cáo kết thúc ứng phó sự cố.",
                          "The authority asks for the closing report.")},
        {"id": "inj-lessons", "phase": "lessons_learned", "title": _t("Rút kinh nghiệm", "Lessons learned"),
         "at": "+5d", "read_aloud": _t("Đội họp rút kinh nghiệm và thống nhất kế hoạch khắc phục.",
                                       "The team meets and agrees the improvement plan.")},
    ]
    expectations: list[dict[str, Any]] = [
        {"id": "e-triage", "phase": "detection", "objective": "o-detect", "role": "soc_analyst",
         "action": _t("Xác minh cảnh báo và đối chiếu với phát hiện mở của SOC",
                      "Confirm the alert and match it to the SOC's open finding"),
         "deadline": {"after": "inj-alert", "within": "+30m"}, "weight": 2, "milestone": "detect"},
        {"id": "e-initial-report", "phase": "initial_report", "objective": "o-detect", "role": "authority_liaison",
         "action": _t("Gửi báo cáo ban đầu sự cố tới cơ quan chức năng", "Send the initial incident report"),
         "deadline": {"report": "initial_report"}, "weight": 3, "milestone": "report"},
        {"id": "e-contain", "phase": "containment", "objective": "o-contain", "role": "incident_commander",
         "action": _t("Quyết định và thực hiện ngăn chặn", "Decide on and carry out containment"),
         "deadline": {"after": "inj-escalate", "within": "+2h"}, "weight": 3, "milestone": "contain"},
        {"id": "e-damage", "phase": "containment", "objective": "o-contain", "role": "leadership",
         "action": _t("Phê duyệt ngừng dịch vụ và thông báo cho người dân", "Approve the shutdown and tell citizens"),
         "deadline": {"after": "inj-spread", "within": "+1h"}, "weight": 2, "requires": "inj-spread"},
        {"id": "e-brief", "phase": "assessment", "objective": "o-contain", "role": "incident_commander",
         "action": _t("Báo cáo nhanh lãnh đạo", "Brief the leadership"),
         "deadline": {"after": "inj-leadership", "within": "+2h"}},
        {"id": "e-fix", "phase": "eradication", "objective": "o-recover", "role": "system_owner",
         "action": story["fix"], "deadline": {"after": "inj-rootcause", "within": "+12h"}, "weight": 3,
         "corrective_action": story["fix"], "due_days": 14},
        {"id": "e-restore", "phase": "recovery", "objective": "o-recover", "role": "system_owner",
         "action": _t("Kiểm tra và mở lại dịch vụ", "Check and reopen the service"),
         "deadline": {"after": "inj-recovery", "within": "+1d"}, "weight": 2, "milestone": "recover"},
        {"id": "e-closing", "phase": "closing_report", "objective": "o-detect", "role": "authority_liaison",
         "action": _t("Gửi báo cáo kết thúc", "Send the closing report"),
         "deadline": {"after": "inj-closing", "within": "+1d"}},
        {"id": "e-lessons", "phase": "lessons_learned", "objective": "o-recover", "role": "incident_commander",
         "action": _t("Thống nhất kế hoạch khắc phục có người chịu trách nhiệm và hạn",
                      "Agree the improvement plan with owners and due dates"),
         "deadline": {"after": "inj-lessons", "within": "+1d"}},
    ]
    ident = scenario_id or f"draft-{main.kind}-{main.finding.fingerprint[:8]}"
    data: dict[str, Any] = {
        "id": ident, "version": 1, "title": story["title"],
        "summary": _t(f"Bản nháp dựng ngày {drill_date:%d/%m/%Y} từ phát hiện mở của SOC ({main.finding.check_id} "
                      f"trên {subject}). Đội ứng cứu rà soát, chỉnh sửa trước khi dùng.",
                      f"Draft built on {drill_date:%d/%m/%Y} from the SOC's open finding ({main.finding.check_id} "
                      f"on {subject}). The team reviews and edits it before use."),
        "target": {"system": _t(system, system), "level": main.level, "system_id": main.system_id,
                   "agency": main.agency, "portal": subject if subject.startswith("http") else None},
        "duration": "6d", "detection": "inj-alert",
        "objectives": [{"id": "o-detect", "title": _t("Phát hiện và báo cáo đúng hạn", "Detect and report on time")},
                       {"id": "o-contain", "title": _t("Ngăn chặn kịp thời", "Contain in time")},
                       {"id": "o-recover", "title": _t("Khắc phục điểm yếu và khôi phục", "Fix the weakness and "
                                                                                          "recover")}],
        "roles": ["incident_commander", "soc_analyst", "system_owner", "leadership", "authority_liaison"],
        "injects": injects,
        "decisions": [{"id": "d-contain", "phase": "containment", "role": "incident_commander",
                       "after": "inj-escalate",
                       "prompt": _t("Ngừng dịch vụ ngay để ngăn chặn?", "Stop the service now to contain it?"),
                       "options": [{"id": "contain-now", "label": _t("Ngăn chặn ngay", "Contain now")},
                                   {"id": "keep-running", "label": _t("Giữ dịch vụ, theo dõi thêm",
                                                                      "Keep it running, watch")}],
                       "default": "contain-now"}],
        "expectations": expectations,
        "generated_from": [e.finding.fingerprint for e in [main, *others]],
    }
    data["target"] = {k: v for k, v in data["target"].items() if v is not None}
    Scenario.model_validate(data)  # the builder's own output must be a scenario (a bug here is ours)
    return data


def to_yaml(data: Mapping[str, Any]) -> str:
    """The draft as a scenario file, with a header saying it is a draft."""
    header = ("# Bản nháp do `soc drill generate --from-findings` dựng — rà soát trước khi dùng.\n"
              "# Draft made by `soc drill generate --from-findings` — review it before use.\n")
    return header + yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False, width=110)
