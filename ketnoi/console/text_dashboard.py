"""The strings of the console's dashboard pages (merged into :data:`ketnoi.console.i18n.TEXT`)."""

from __future__ import annotations

from typing import Final

TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {},
    "en": {},
}
