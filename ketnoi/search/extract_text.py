"""Full-text bodies of ``_text`` and ``_content`` (http://hl7.org/fhir/R4/search.html#text).

Each parameter gives one :class:`~ketnoi.search.index.TextRow` per resource: the folded text
(:func:`ketnoi.search.normalize.fold`: lower case, accents and Vietnamese diacritics removed,
đ → d, whitespace collapsed to single spaces), cut at :data:`~ketnoi.search.index.TEXT_BODY_MAX`
characters. A resource without any such text gets no row. The query side folds the search words the
same way and matches each as a substring of the body (``ketnoi.search.compile``).

- ``_text``: the narrative ``text.div`` with the XHTML tags replaced by spaces and the character
  references (``&amp;``, ``&#7877;``) decoded.
- ``_content``: every JSON string value of the resource (contained resources included), except the
  Narrative (``text`` objects: that is ``_text``), the values under the keys in :data:`SKIPPED_KEYS`
  (ids, ``meta``, ``div``, ``resourceType``, references, URLs and code systems, base64 ``data``)
  and under the ``value[x]``-style keys ending in :data:`SKIPPED_SUFFIXES` (URIs, URLs, canonicals,
  base64). Codes, dates and display texts are kept. Repeated values are kept once; at most 20,000
  distinct values and 1M characters are looked at.

Cost: one walk of the JSON and one fold of the joined text per resource (not one fold per value).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from ketnoi.search.index import TEXT_BODY_MAX
from ketnoi.search.normalize import fold

__all__ = ["SKIPPED_KEYS", "SKIPPED_SUFFIXES", "TEXT_SOURCES", "content_body", "fold_body", "narrative_body"]

SKIPPED_KEYS = frozenset({"id", "meta", "div", "resourceType", "reference", "url", "system", "fullUrl", "data"})
SKIPPED_SUFFIXES = ("Uri", "Url", "Canonical", "Base64Binary")
_RAW_MAX = 16 * TEXT_BODY_MAX  # raw characters looked at (tags and markup included) before folding
_MAX_VALUES = 20_000  # distinct string values looked at per resource
_CHUNK = 64  # words folded per fold() call on non-ASCII text (see fold_body)
_TAG = re.compile(r"<[^>]*>")


def fold_body(text: str) -> str:
    """``fold`` of a long text, cut at ``TEXT_BODY_MAX`` characters.

    ``fold`` caches its non-ASCII inputs (an LRU of 8,192 entries): a whole narrative as one key
    could pin up to 64k characters per entry, so non-ASCII text is folded in chunks of 64 words
    (folding is per word, so the result is the same)."""
    if text.isascii():
        body = fold(text)
    else:
        words = text.split()
        folded = (fold(" ".join(words[i : i + _CHUNK])) for i in range(0, len(words), _CHUNK))
        body = " ".join(chunk for chunk in folded if chunk)
    return body[:TEXT_BODY_MAX].rstrip()


def narrative_body(resource: dict[str, Any]) -> str:
    """The folded words of ``text.div`` (tags stripped, entities decoded); "" without a narrative."""
    narrative = resource.get("text")
    if type(narrative) is not dict:
        return ""
    div = narrative.get("div")
    if type(div) is not str:
        return ""
    plain = _TAG.sub(" ", div[:_RAW_MAX])
    if "&" in plain:
        plain = html.unescape(plain)
    return fold_body(plain)


def _skipped(key: str) -> bool:
    skip = key in SKIPPED_KEYS or key.endswith(SKIPPED_SUFFIXES)
    if len(_SKIP_CACHE) < 20_000:  # element names: a small set; bounded against odd input
        _SKIP_CACHE[key] = skip
    return skip


_SKIP_CACHE: dict[str, bool] = {}


def content_body(resource: dict[str, Any]) -> str:
    """The folded words of every string value of the resource but the skipped ones (module doc)."""
    values: dict[str, None] = {}  # insertion-ordered set: each distinct value once
    stack: list[Any] = [resource]
    pop, push, skip_of = stack.pop, stack.append, _SKIP_CACHE.get
    while stack and len(values) < _MAX_VALUES:
        node = pop()
        if type(node) is dict:
            for key, value in node.items():
                skip = skip_of(key)
                if skip is None:
                    skip = _skipped(key)
                if skip:
                    continue
                kind = type(value)
                if kind is str:
                    values[value] = None
                elif kind is list or (kind is dict and key != "text"):  # a dict under "text": the Narrative
                    push(value)
        else:  # a list (only dicts and lists are pushed)
            for item in node:
                kind = type(item)
                if kind is str:
                    values[item] = None
                elif kind is dict or kind is list:
                    push(item)
    return fold_body(" ".join(values)[:_RAW_MAX]) if values else ""


# Parameter code → body of a resource for that parameter.
TEXT_SOURCES: dict[str, Callable[[dict[str, Any]], str]] = {"_text": narrative_body, "_content": content_body}
