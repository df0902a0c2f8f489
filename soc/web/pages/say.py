"""Messages a page tells the user (what was done, what was refused), in the language of the request.

A message of ours is a catalogue entry with its values filled in after translation; a service's message
(ServiceError) is shown as it is. Either way the page shows it as text (`| text`), never as markup.
"""

from __future__ import annotations

from fastapi import Request

from soc.web import i18n
from soc.web.templating import language_of


def say(request: Request, message: str, **values: object) -> str:
    """`message` (a msgid marked with N_) translated for this request, then `%(name)s` filled from `values`."""
    i18n.use(language_of(request))
    translated = i18n.gettext(message)
    return translated % values if values else translated
