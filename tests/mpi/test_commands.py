"""``ketnoi mpi dedupe`` and ``ketnoi mpi train`` as an operator runs them: subprocesses on a database
loaded with the synthetic population's Patients and their planted duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ketnoi.app import open_store
from ketnoi.demo.generate import iter_blocks
from ketnoi.mpi.model import Model

ENV = {**os.environ, "KETNOI_MPI_LINK": "off"}


def ketnoi(*args: str, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ketnoi", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, set[tuple[str, str]]]:
    folder = tmp_path_factory.mktemp("mpi")
    truth: set[tuple[str, str]] = set()
    lines = []
    for block, dup in iter_blocks(400, 3, duplicate_rate=0.1):
        lines += [orjson.dumps(r) for r in block if r["resourceType"] == "Patient"]
        if dup is not None:
            truth.add(tuple(sorted((dup.duplicate_id, dup.original_id))))  # type: ignore[arg-type]
    (folder / "Patient.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    url = f"sqlite:///{folder}/mpi.db"
    assert ketnoi("migrate", "--database", url).returncode == 0
    # with linking on, as a server runs: the bulk load still queues none (dedupe's job)
    loaded = ketnoi("load", "--database", url, str(folder / "Patient.ndjson"), env={**ENV, "KETNOI_MPI_LINK": "on"})
    assert loaded.returncode == 0, loaded.stderr
    return url, truth


def test_a_bulk_load_queues_no_linking(database: tuple[str, set[tuple[str, str]]]) -> None:
    store = open_store(database[0])
    try:
        with store.session(write=False) as session:
            assert session.jobs("mpi-link", ("queued", "running", "done", "failed")) == []
            assert len(session.current_page(["Patient"], None, 1000)) > 400  # the load did write
    finally:
        store.close()


def goldens(url: str) -> list[dict[str, object]]:
    store = open_store(url)
    try:
        with store.session(write=False) as session:
            page = session.current_page(["Patient"], None, 100_000)
        bodies = [orjson.loads(v.content or b"{}") for v in page]
    finally:
        store.close()
    return [b for b in bodies if any(t.get("code") == "golden" for t in b.get("meta", {}).get("tag", []))]


def test_dedupe_links_the_planted_duplicates_and_a_second_run_writes_nothing(
    database: tuple[str, set[tuple[str, str]]],
) -> None:
    url, truth = database
    dry = ketnoi("mpi", "dedupe", "--database", url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "pairs may be one person" in dry.stdout and goldens(url) == []
    first = ketnoi("mpi", "dedupe", "--database", url)
    assert first.returncode == 0, first.stderr
    linked = {tuple(sorted(link["other"]["reference"][8:] for link in g["link"])) for g in goldens(url)}  # type: ignore[index, union-attr]
    assert len(linked & truth) >= 0.9 * len(truth)
    assert all(len(group) >= 2 for group in linked)
    again = ketnoi("mpi", "dedupe", "--database", url)
    assert again.returncode == 0 and "0 linked, 0 sent to review" in again.stdout, again.stdout


def test_train_writes_a_model_the_server_can_load(database: tuple[str, set[tuple[str, str]]], tmp_path: Path) -> None:
    url, _ = database
    out = tmp_path / "model.json"
    done = ketnoi("mpi", "train", "--database", url, "--out", str(out), "--random-pairs", "5000")
    assert done.returncode == 0, done.stderr
    model = Model.from_json(json.loads(out.read_text()))
    assert model.trained["records"] >= 400 and f"KETNOI_MPI_MODEL={out}" in done.stdout


def test_too_few_patients_and_a_bad_model_file_are_one_line_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    assert ketnoi("migrate", "--database", url).returncode == 0
    few = ketnoi("mpi", "train", "--database", url, "--out", str(tmp_path / "m.json"))
    assert few.returncode == 2 and few.stderr.strip().count("\n") == 0 and "too few" in few.stderr
    (tmp_path / "bad.json").write_text('{"prior": 2}')
    bad = subprocess.run(
        [sys.executable, "-m", "ketnoi", "mpi", "dedupe", "--database", url],
        capture_output=True,
        text=True,
        env={**ENV, "KETNOI_MPI_MODEL": str(tmp_path / "bad.json")},
        timeout=120,
        check=False,
    )
    assert bad.returncode != 0 and "KETNOI_MPI_MODEL" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
