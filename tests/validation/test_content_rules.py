"""Attachment.size against its data, and the narrative's XHTML (txt-1): a script, an event handler
or a script URL in a narrative is refused like an invariant (stored cross-site scripting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.validation import check_content_rules, validate

EXAMPLES = Path(__file__).resolve().parents[1] / "data/fhir-r4-examples/json"
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _patient(div: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "text": {"status": "generated", "div": div}}


def test_an_attachment_size_must_be_its_data_length() -> None:
    media = {"resourceType": "Media", "status": "completed", "content": {"data": "aGVscCBpJ20gYSBidWc=", "size": 100}}
    (issue,) = check_content_rules(media)
    assert issue.code == "invariant" and issue.expression == ("Media.content.size",)
    assert "100" in issue.en and "14" in issue.en and "byte" in issue.vi
    media["content"]["size"] = 14  # "help i'm a bug"
    assert check_content_rules(media) == []


@pytest.mark.parametrize(
    ("div", "what"),
    [
        (f"<div {XHTML}>hi <script>alert(1)</script></div>", "element <script>"),
        (f'<div {XHTML}><p onclick="steal()">hi</p></div>', "attribute onclick="),
        (f'<div {XHTML}><a href=" JavaScript:steal()">x</a></div>', "a script URL in href="),
        (f"<div {XHTML}><iframe src='x'/></div>", "element <iframe>"),
        (f"<div {XHTML}><form><input/></form></div>", "element <form>"),
    ],
)
def test_unsafe_narratives_are_refused(div: str, what: str) -> None:
    issues = check_content_rules(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _patient(div)}]}
    )
    assert issues and all(i.code == "invariant" and "txt-1" in i.en and "txt-1" in i.vi for i in issues)
    assert issues[0].expression == ("Bundle.entry[0].resource.text.div",)
    assert any(what in i.en for i in issues), [i.en for i in issues]
    assert [i for i in validate(_patient(div), invariants=True) if "txt-1" in i.en]


def test_formatting_tables_links_and_images_pass() -> None:
    div = (
        f'<div {XHTML} xml:lang="vi"><h1 class="t">Bệnh án</h1><p style="color:red">Chẩn đoán <b>I10</b></p>'
        '<table border="1"><tr><th>a</th><td colspan="2">b</td></tr></table><a href="#x" name="x">x</a>'
        '<img src="#logo" alt="logo"/><ul><li>1</li></ul></div>'
    )
    assert check_content_rules(_patient(div)) == []


def test_no_official_example_is_flagged() -> None:
    flagged = [p.name for p in EXAMPLES.glob("*.json") if check_content_rules(orjson.loads(p.read_bytes()))]
    assert flagged == []
