"""`soc drill run SCENARIO` in the terminal: the facilitator at the keyboard, quitting keeps the session, and
`--session ID` resumes it where it stood."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import FixedClock

QLVB = Path(__file__).resolve().parents[2] / "playbooks" / "qlvb-ransomware.yaml"


def test_a_terminal_drill_is_kept_on_quit_and_resumed_to_its_score(tmp_path: Path) -> None:
    db = str(tmp_path / "soc.db")
    state = CliState(clock=FixedClock(datetime(2026, 12, 2, 3, 0, tzinfo=UTC)))
    first = CliRunner().invoke(app, ["drill", "run", str(QLVB), "--db", db],
                               input="a e-triage soc_analyst\nn\nd d-isolate isolate-now\nbogus\nq\n", obj=state)
    assert first.exit_code == 0, first.output
    session = re.search(r"soc drill run --session (\w+)", first.output)
    assert session is not None
    assert "Cảnh báo tải tệp bất thường" in first.output  # the first inject, shown at once
    assert "Xác nhận webshell" in first.output  # `n` advanced to the next one
    assert "not open yet" in first.output  # the decision opens only with inj-lateral: refused, said, not fatal
    second = CliRunner().invoke(app, ["drill", "run", "--session", session.group(1), "--db", db],
                                input="t +2h\nd d-isolate isolate-now\ns\ne\n", obj=state)
    assert second.exit_code == 0, second.output
    assert "Dò quét mạng nội bộ" in second.output and "Cô lập thành công" not in second.output  # +1 h after
    assert "score" in second.output
    listed = CliRunner().invoke(app, ["drill", "sessions", "--json", "--db", db])
    assert '"status": "ended"' in listed.stdout
