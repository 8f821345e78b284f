"""Shared generated data sets for the demo-generator tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ketnoi.demo.generate import Summary, generate

SEED = 11
N = 300


@pytest.fixture(scope="session")
def ndjson_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    out = tmp_path_factory.mktemp("demo-ndjson")
    return out, generate(N, SEED, out, duplicate_rate=0.05)


@pytest.fixture(scope="session")
def bundles_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    out = tmp_path_factory.mktemp("demo-bundles")
    return out, generate(N, SEED, out, fmt="bundles", duplicate_rate=0.05)


@pytest.fixture(scope="session")
def ndjson_resources(ndjson_run: tuple[Path, Summary]) -> list[dict[str, Any]]:
    out, _ = ndjson_run
    return [orjson.loads(line) for path in sorted(out.glob("*.ndjson")) for line in path.read_bytes().splitlines()]
