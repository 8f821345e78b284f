"""Whole-set deduplication and EM training on the synthetic population's planted duplicates
(ketnoi.mpi.dedupe, ketnoi.mpi.train): the same machinery bench/mpi_accuracy.py runs at 100,000."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ketnoi.demo.generate import iter_blocks
from ketnoi.mpi import dedupe
from ketnoi.mpi.dedupe import Confusion, candidate_pairs, evaluate, key_buckets, scored_pairs
from ketnoi.mpi.model import Model
from ketnoi.mpi.train import train
from ketnoi.search.extract_mpi import PatientView, patient_view
from tests.mpi.people import patient


@dataclass
class Population:
    ids: list[str]
    views: list[PatientView]
    truth: set[tuple[str, str]]


def pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


@pytest.fixture(scope="module")
def population() -> Population:
    ids, views, truth = [], [], set()
    for block, dup in iter_blocks(1500, 5, duplicate_rate=0.1):
        for resource in block:
            if resource["resourceType"] == "Patient":
                ids.append(resource["id"])
                views.append(patient_view(resource))
        if dup is not None:
            truth.add(pair(dup.duplicate_id, dup.original_id))
    assert len(truth) > 100
    return Population(ids, views, truth)


@pytest.fixture(scope="module")
def model(population: Population) -> Model:
    return train(population.views, random_pairs=20_000)


def test_blocking_finds_every_planted_duplicate_among_few_candidates(population: Population) -> None:
    pairs = list(candidate_pairs(population.views))
    keyed = {pair(population.ids[i], population.ids[j]) for i, j in pairs}
    assert population.truth <= keyed
    assert len(pairs) == len(set(pairs)) and all(i < j for i, j in pairs)
    assert len(pairs) < 3 * len(population.views)  # not n², not even n log n


def test_em_learns_what_agreement_means_without_labels(population: Population, model: Model) -> None:
    model.check()
    assert model.trained["records"] == len(population.views)
    assert 0 < model.prior < 0.001
    for name, level in (("cccd", "agree"), ("birth", "exact"), ("given", "folded"), ("place", "commune")):
        assert model.m[name][level] > 10 * model.u[name][level], (name, level)
    for name, level in (("birth", "other"), ("given", "other"), ("cccd", "disagree")):
        assert model.m[name][level] < model.u[name][level], (name, level)
    assert 0.25 < model.tf["family"]["nguyen"] < 0.5  # Nguyễn: about 38 % of people
    assert Model.from_json(json.loads(json.dumps(model.to_json()))).to_json() == model.to_json()


def test_the_trained_model_finds_the_duplicates_and_links_no_strangers(population: Population, model: Model) -> None:
    scored = list(scored_pairs(population.views, model, candidate_pairs(population.views)))
    grades = {pair(population.ids[p.a], population.ids[p.b]): p.match.grade for p in scored}
    auto = {k for k, g in grades.items() if g == "certain"}
    review = {k for k, g in grades.items() if g != "certainly-not"}
    assert evaluate(auto, population.truth).precision >= 0.99
    assert evaluate(review, population.truth).recall >= 0.97


def test_a_bucket_larger_than_the_limit_is_a_placeholder_not_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    desk = [patient(given=(g,), birth=f"19{50 + i}-01-02", phone="0900000000") for i, g in enumerate("ABCDE")]
    views = [patient_view(r) for r in desk]
    assert (("t", "0900000000")) in key_buckets(views)
    assert len(list(candidate_pairs(views, kinds=frozenset({"t"})))) == 10
    monkeypatch.setattr(dedupe, "MAX_BUCKET", 4)
    assert list(candidate_pairs(views, kinds=frozenset({"t"}))) == []


def test_the_wide_given_name_and_year_key_pairs_only_partial_birth_dates() -> None:
    full = [patient_view(patient(family=f, birth="1980-05-06")) for f in ("Lê", "Phạm")]
    partial = patient_view(patient(family="Đỗ", birth="1980"))
    assert list(candidate_pairs(full, kinds=frozenset({"gy"}))) == []
    assert sorted(candidate_pairs([*full, partial], kinds=frozenset({"gy"}))) == [(0, 2), (1, 2)]


def test_confusion_counts_and_rates() -> None:
    c = evaluate({("a", "b"), ("c", "d"), ("e", "f")}, {("a", "b"), ("c", "d"), ("g", "h"), ("i", "j")})
    assert (c.true_positive, c.false_positive, c.false_negative) == (2, 1, 2)
    assert (c.precision, c.recall) == (2 / 3, 0.5)
    assert c.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert Confusion().precision == 1.0 and Confusion().recall == 1.0 and Confusion().f1 == 1.0


def test_swapped_name_fields_and_year_only_dates_still_share_a_key() -> None:
    written = patient_view(patient(family="Nguyễn", given=("Văn", "An"), birth="1980-05-06"))
    swapped = patient_view(patient(family="An", given=("Nguyen",), birth="1980-06-05"))  # and day/month
    year_only = patient_view(patient(family="An", given=("Nguyễn",), birth="1980"))
    typo_year_only = patient_view(patient(family="Nguyễn", given=("Ann",), birth="1980"))  # same commune
    assert list(candidate_pairs([written, swapped], kinds=frozenset({"pd"}))) == [(0, 1)]
    assert list(candidate_pairs([written, year_only], kinds=frozenset({"py"}))) == [(0, 1)]
    assert list(candidate_pairs([written, typo_year_only], kinds=frozenset({"fc"}))) == [(0, 1)]
    namesake = patient_view(patient(family="Nguyễn", given=("Văn", "An"), birth="1980-11-12"))
    assert list(candidate_pairs([written, namesake], kinds=frozenset({"py", "fc"}))) == []  # full dates: no
