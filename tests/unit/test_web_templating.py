"""Templates show data as text: autoescape everywhere, and `_()` of a word from data escapes it too (Jinja's
newstyle gettext marks what the callable returns as safe)."""

from __future__ import annotations

from soc.web import i18n
from soc.web.templating import environment

PAYLOAD = '"><img src=x onerror="window.__xss=2"><script>window.__xss=1</script>'


def test_values_translated_words_and_format_arguments_are_escaped() -> None:
    i18n.use("vi")
    page = environment().from_string(
        '{{ x }}|{{ _(x) }}|{{ x | t }}|{{ _("page %(number)s", number=x) }}|{{ x | text }}').render(x=PAYLOAD)
    assert "<script>" not in page and "<img" not in page
    assert page.count("&lt;script&gt;") == 5


def test_catalogue_words_still_translate() -> None:
    i18n.use("vi")
    assert environment().from_string('{{ _("Findings") }} {{ "open" | t }}').render() == "Phát hiện đang mở"
