"""The dashboard's gettext catalogues: every message the templates and pages use has its Vietnamese, and the
English catalogue knows the same messages (an untranslated English message falls back to its English id)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from soc.web import i18n

REPO = Path(__file__).resolve().parents[2]
METHODS = [("soc/web/templates/**.html", "jinja2"), ("soc/web/**.py", "python")]
OPTIONS = {"soc/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def used_messages() -> set[str]:
    found = extract_from_dir(str(REPO), METHODS, options_map=OPTIONS, keywords={"_": None, "N_": None,
                                                                             "gettext": None})
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def catalogue(language: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    for path in sorted((i18n.LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as source:
            messages |= {str(m.id): str(m.string) for m in read_po(source) if m.id}
    return messages


def test_every_message_has_its_vietnamese() -> None:
    used, vietnamese = used_messages(), catalogue("vi")
    assert len(used) > 40
    missing = sorted(message for message in used if not vietnamese.get(message))
    assert missing == [], f"add to a .po file of soc/web/locale/vi/LC_MESSAGES/: {missing}"


def test_the_english_catalogue_knows_the_same_messages() -> None:
    assert set(catalogue("en")) == set(catalogue("vi"))


def test_messages_are_translated_at_render_time() -> None:
    i18n.use("vi")
    assert i18n.gettext("Findings") == "Phát hiện"
    i18n.use("en")
    assert i18n.gettext("Findings") == "Findings"
    i18n.use("vi")
    assert i18n.number(1234.5, 1) == "1.234,5" and i18n.percent(80.5) == "80,5 %"
