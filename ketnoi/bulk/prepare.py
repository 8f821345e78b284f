"""Preparation for bulk loads: parse, validate and extract index rows before the write.

``prepare`` is what the loader's preparing thread runs for each resource (``load.write_behind``
writes the previous batch meanwhile); ``prepared_chunks`` runs the same in worker processes
(``--workers``), for machines with more cores. Workers use the same validator and an extractor
built from the same SearchParameters as the server; ``Repository.upsert(resource, prepared)`` then
writes exactly what the serial path would have. SearchParameter resources themselves are left to
the writer (their activation checks depend on the running server's registry). Workers build their
extractor once: a SearchParameter loaded with ``--workers`` applies to later loads, not to the
lines prepared alongside it (the thread pipeline has no such limit).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import orjson

from ketnoi.fhir.outcome import FhirError
from ketnoi.interactions.repository import check_valid
from ketnoi.interactions.services import Extractor as IndexExtractor
from ketnoi.interactions.services import Services, Validator
from ketnoi.search.extract import Extractor
from ketnoi.search.index import IndexRows

# (source label, parsed resource or None, index rows when valid, error text when refused)
PreparedItem = tuple[str, Any, IndexRows | None, str | None]

_worker: dict[str, Any] = {}


def _init_worker(params: list[dict[str, Any]], validator: Validator | None, strict: bool) -> None:
    _worker.update(extractor=Extractor(params), validator=validator, strict=strict)


def prepare_chunk(chunk: list[tuple[str, bytes]]) -> list[PreparedItem]:
    """Runs in a worker: each raw NDJSON line → parsed, validated, indexed (or why not)."""
    extractor: Extractor = _worker["extractor"]
    validator, strict = _worker["validator"], _worker["strict"]
    out: list[PreparedItem] = []
    for source, raw in chunk:
        resource = parse_line(raw)
        if isinstance(resource, str):
            out.append((source, None, None, resource))
        else:
            out.append(prepare(source, resource, extractor, validator, strict))
    return out


def parse_line(data: bytes) -> Any:
    """The parsed JSON, or the reason it is not JSON (a str, reported as the failure)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"


def prepare(
    source: str, resource: Any, extractor: IndexExtractor, validator: Validator | None, strict: bool
) -> PreparedItem:
    """One parsed resource → validated and indexed, or the reason it is refused. What this cannot
    judge alone is passed on unprepared for ``Repository.upsert`` to do it all: anything that is
    not an object (refused there with the usual message) and SearchParameters (their checks
    depend on the server's registry, and writing one changes the extractor)."""
    if not isinstance(resource, dict) or resource.get("resourceType") == "SearchParameter":
        return (source, resource, None, None)
    try:
        check_valid(validator, resource, strict)
    except FhirError as exc:
        return (source, resource, None, str(exc))
    return (source, resource, extractor.extract(resource), None)


def changes_extraction(item: PreparedItem) -> bool:
    """Writing this item may change how the following resources are indexed (a SearchParameter)."""
    resource = item[1]
    return isinstance(resource, dict) and resource.get("resourceType") == "SearchParameter"


def prepared_chunks(
    services: Services, chunks: Iterable[list[tuple[str, bytes]]], workers: int
) -> Iterator[list[PreparedItem]]:
    """Prepare chunks in ``workers`` processes, in order, with a bounded number in flight."""
    params = services.extractor.search_parameters() if isinstance(services.extractor, Extractor) else []
    context = multiprocessing.get_context("spawn")  # no inherited threads, connections or locks
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(params, services.validator, services.settings.strict),
    ) as pool:
        in_flight: deque[Future[list[PreparedItem]]] = deque()
        for chunk in chunks:
            in_flight.append(pool.submit(prepare_chunk, chunk))
            if len(in_flight) > 2 * workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
