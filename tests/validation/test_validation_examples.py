"""Every official R4 JSON example is structurally valid, except the few that break the spec's own rules."""

from __future__ import annotations

import orjson
import pytest

from ketnoi.validation import validate
from tests.support.fhir_examples import EXAMPLES, FILES, KNOWN_INVALID


def test_the_example_set_is_complete() -> None:
    assert len(FILES) == 819
    assert set(KNOWN_INVALID) <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_official_example(name: str) -> None:
    resource = orjson.loads((EXAMPLES / name).read_bytes())
    errors = [i for i in validate(resource) if i.severity == "error"]
    if name in KNOWN_INVALID:
        expression, reason = KNOWN_INVALID[name]
        assert any(i.expression == (expression,) for i in errors), reason
    else:
        assert errors == []
