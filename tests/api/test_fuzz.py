"""Random malformed requests: whatever arrives, the answer is never a 500 (a deterministic fuzz)."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

rng = random.Random(0)


def rval(depth: int = 0) -> Any:
    c = rng.random()
    if depth > 3 or c < 0.3:
        return rng.choice(
            [None, True, False, 0, -1, 1.5, 10**20, "", "x", "ü\u0000", "Patient/1", "urn:uuid:1", "1990-13-01", [], {}]
        )
    if c < 0.6:
        return [rval(depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        rng.choice(
            [
                "resourceType",
                "id",
                "meta",
                "request",
                "url",
                "method",
                "resource",
                "entry",
                "type",
                "fullUrl",
                "name",
                "parameter",
                "part",
                "valueString",
                "reference",
                "subject",
                "identifier",
                "system",
                "value",
                "code",
                "op",
                "path",
                "from",
                "data",
                "contentType",
            ]
        ): rval(depth + 1)
        for _ in range(rng.randint(0, 4))
    }


def rbody() -> Any:
    c = rng.random()
    if c < 0.2:
        return rval()
    if c < 0.5:
        return {
            "resourceType": rng.choice(["Patient", "Bundle", "Parameters", "Observation", "Binary"]),
            **{
                k: rval(1)
                for k in rng.sample(
                    [
                        "id",
                        "meta",
                        "entry",
                        "type",
                        "name",
                        "parameter",
                        "identifier",
                        "subject",
                        "status",
                        "code",
                        "active",
                        "birthDate",
                        "contained",
                        "text",
                        "extension",
                    ],
                    rng.randint(0, 4),
                )
            },
        }
    if c < 0.8:
        return {
            "resourceType": "Bundle",
            "type": rng.choice(["transaction", "batch", "collection", 1, None]),
            "entry": [
                {
                    "fullUrl": rval(2),
                    "resource": rbody() if rng.random() < 0.5 else rval(2),
                    "request": {
                        "method": rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", 1, None, "BREW"]),
                        "url": rng.choice(
                            [
                                "Patient",
                                "Patient/1",
                                "Patient?identifier=a|b",
                                "Patient/$validate",
                                "$import",
                                "Patient/1/_history/1",
                                "http://x/y",
                                1,
                                None,
                                "",
                                "Patient?_sort=bogus",
                                "Observation?subject:Patient.name=x",
                                "?_has:Observation:subject:code=1",
                            ]
                        ),
                        **({"ifMatch": rval(2)} if rng.random() < 0.2 else {}),
                        **(
                            {"ifNoneExist": rng.choice(["identifier=a|b", "bogus=1", "", "_id=1"])}
                            if rng.random() < 0.3
                            else {}
                        ),
                    },
                }
                for _ in range(rng.randint(0, 4))
            ],
        }
    return [
        {
            "op": rng.choice(["add", "remove", "replace", "move", "copy", "test", "bogus", None]),
            "path": rng.choice(["/a", "/name/0", "", "/", "~", "/name/-", None, 1]),
            "value": rval(2),
            "from": rng.choice(["/id", "/x", None]),
        }
        for _ in range(rng.randint(0, 3))
    ]


paths = [
    "",
    "Patient",
    "Patient/1",
    "Patient/_search",
    "Patient/$validate",
    "$validate",
    "$import",
    "$import-status",
    "$reindex",
    "Patient/$reindex",
    "_history",
    "Patient/1/_history",
    "metadata",
    "Patient/1/Observation",
    "Bundle",
    "Parameters/1",
]
params = [
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_has:Observation:subject:code",
    "name",
    "name:exact",
    "identifier",
    "birthdate",
    "_lastUpdated",
    "subject:Patient.name",
    "_elements",
    "_summary",
    "_total",
    "_cursor",
    "value-quantity",
    "code:in",
    "code:below",
    "_id",
    "_since",
    "_at",
    "_page",
    "job",
    "_type",
    "_format",
    "general-practitioner.name",
    "code-value-quantity",
]
vals = [
    "",
    "x",
    "-1",
    "ge2020",
    "eq",
    "1e400",
    "|",
    "a|b|c",
    "\u0000",
    "' OR 1=1--",
    "Patient:organization",
    "*",
    "-name",
    "x" * 5000,
    "2020-02-30",
    "http://loinc.org|1$lt5",
    "%",
    "\\",
    ",,,",
]


@pytest.mark.parametrize("seed", range(3))
def test_no_input_makes_a_500(client: httpx.Client, seed: int) -> None:
    rng.seed(seed)
    failures = []
    for _ in range(150):
        method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
        path = rng.choice(paths)
        query = [(rng.choice(params), rng.choice(vals)) for _ in range(rng.randint(0, 3))]
        headers: dict[str, str] = {}
        if rng.random() < 0.3:
            headers["If-Match"] = rng.choice(['W/"1"', "garbage", "", '"'])
        if rng.random() < 0.2:
            headers["If-None-Exist"] = rng.choice(["identifier=a|b", "bogus", "", "_sort=x"])
        if rng.random() < 0.2:
            headers["Prefer"] = rng.choice(["return=minimal", "handling=strict", "return=OperationOutcome", "x=;;"])
        body = None
        if method in ("POST", "PUT", "PATCH"):
            body = json.dumps(rbody()).encode() if rng.random() < 0.95 else b"\xff\xfe garbage"
            headers["Content-Type"] = rng.choice(
                ["application/fhir+json", "application/json-patch+json", "application/x-www-form-urlencoded"]
            )
        response = client.request(method, "/" + path if path else "", params=query, headers=headers, content=body)
        if response.status_code >= 500:
            failures.append((method, path, query, headers, (body or b"")[:200], response.text[:200]))
    assert failures == []
