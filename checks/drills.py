"""Drill checks: each corrective action not yet confirmed is a finding of its session. Pure.

A session is one subject (`drill:<session id>`) with one complete observation, so an action once confirmed
(marked done by its owner, then confirmed by a later drill or scan) resolves its finding in the ordinary
lifecycle, and the finding carries the action's owner, due date and text.
"""

from __future__ import annotations

from collections.abc import Sequence

from checks.catalogue import make_finding
from soc.core.drill_records import ActionStatus, CorrectiveAction
from soc.core.models import Finding, Severity

CHECK = "drill.corrective_action"


def drill_subject(session_id: str) -> str:
    """Subject key of a session's findings."""
    return f"drill:{session_id}"


def action_findings(session_id: str, actions: Sequence[CorrectiveAction], level: int) -> list[Finding]:
    """The findings of a session's actions that are not confirmed (high on a level-3+ system)."""
    severity = Severity.HIGH if level >= 3 else Severity.MEDIUM
    findings = []
    for action in actions:
        if action.status is ActionStatus.CONFIRMED:
            continue
        state = "đã báo hoàn thành, chờ xác nhận / marked done, awaiting confirmation" \
            if action.status is ActionStatus.DONE else "chưa thực hiện / not done"
        evidence = (f"{action.text_vi} / {action.text_en} — hạn / due {action.due:%d/%m/%Y}; "
                    f"yêu cầu / expectation {action.expectation_id}; {state}")
        findings.append(make_finding(drill_subject(session_id), CHECK, evidence, detail=action.id, severity=severity))
    return findings
