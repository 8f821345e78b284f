"""Every console string exists in Vietnamese and English, and every key a template uses is defined."""

from __future__ import annotations

import re
from pathlib import Path

from ketnoi.console import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"


def test_both_languages_have_the_same_keys_and_no_empty_text() -> None:
    vi, en = i18n.TEXT["vi"], i18n.TEXT["en"]
    assert vi.keys() == en.keys(), vi.keys() ^ en.keys()
    assert all(text.strip() for text in [*vi.values(), *en.values()])
    # A key left untranslated (the same words in both) is a defect, but for names and codes.
    same = {k for k in vi if vi[k] == en[k]}
    assert not same, same


def test_every_key_a_template_uses_is_defined() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\.([a-z_]+)\b(?!\()", template.read_text()))
    assert used, "no t.key found in the templates"
    assert used <= i18n.TEXT["vi"].keys(), used - i18n.TEXT["vi"].keys()


def test_english_only_when_the_browser_puts_it_first_or_the_user_chose_it() -> None:
    assert i18n.choose(None, "en-US,en;q=0.9,vi;q=0.8") == "en"
    assert i18n.choose(None, "vi-VN,vi;q=0.9,en;q=0.8") == "vi"
    assert i18n.choose(None, None) == "vi"
    assert i18n.choose("en", "vi-VN") == "en"
    assert i18n.choose("fr", "fr-FR") == "vi"  # neither language: Vietnamese
