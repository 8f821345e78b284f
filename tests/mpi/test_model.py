"""Weights, identifier rules and grades (ketnoi.mpi.model), with the shipped model."""

from __future__ import annotations

import copy

import pytest

from ketnoi.mpi.compare import compare
from ketnoi.mpi.matcher import default_model, score
from ketnoi.mpi.model import Model
from ketnoi.search.extract_mpi import patient_view
from tests.mpi.people import patient


def _decide(a: dict, b: dict, model: Model | None = None):  # type: ignore[no-untyped-def,type-arg]
    model = model or default_model()
    return model.decide(compare(patient_view(a), patient_view(b)), patient_view(a))


def test_two_different_cccds_are_two_people_whatever_else_agrees() -> None:
    match = _decide(patient(cccd="001085012345"), patient(cccd="001085099999"))
    assert (match.grade, match.probability) == ("certainly-not", 0.0)
    assert "CCCD" in match.reason


def test_the_same_cccd_links_unless_birth_or_sex_contradict() -> None:
    same = _decide(patient(cccd="001085012345"), patient(family="Tran", given=("An",), cccd="001085012345"))
    assert same.grade == "certain"
    contradicted = _decide(patient(cccd="001085012345"), patient(birth="1961-11-30", cccd="001085012345"))
    assert contradicted.grade == "probable"  # a CCCD typed into the wrong record: review, never automatic
    other_sex = _decide(patient(bhyt="DN4010123456789"), patient(gender="female", bhyt="DN4010123456789"))
    assert other_sex.grade == "probable"


def test_a_common_family_name_weighs_less_than_a_rare_one() -> None:
    model = default_model()
    common = model.weight(compare(patient_view(patient()), patient_view(patient())), patient_view(patient()))
    rare_person = patient(family="Lò")
    rare = model.weight(compare(patient_view(rare_person), patient_view(rare_person)), patient_view(rare_person))
    assert rare > common + 3  # "Nguyễn" is about 38 % of people


def test_strangers_with_a_common_name_are_not_linked() -> None:
    # Same common name and year, different birth date, sex agreeing, nothing else: not the same person.
    match = _decide(patient(birth="1985-03-07"), patient(birth="1985-10-21", place=("79", "x", None)))
    assert match.grade in ("possible", "certainly-not")


def test_the_usual_registration_errors_are_still_found() -> None:
    original = patient(phone="0912345678")
    for variant in (
        patient(family="Nguyen", given=("Van", "Binh"), phone="+84 912 345 678"),
        patient(birth="1985-07-03", phone="0912345678"),
        patient(given=("Bình",), phone="0912345678"),
    ):
        assert _decide(original, variant).grade in ("certain", "probable")


def test_the_prior_falls_as_the_registry_grows() -> None:
    model = default_model()
    trained = int(model.trained["records"])
    bigger = model.for_records(trained * 10)
    assert bigger.prior == pytest.approx(model.prior * (trained - 1) / (trained * 10 - 1))
    pair = compare(patient_view(patient()), patient_view(patient(birth="1985")))
    assert bigger.weight(pair) < model.weight(pair)


def test_score_orders_best_first_and_drops_the_certainly_not() -> None:
    query = patient(phone="0912345678")
    exact = dict(patient(phone="0912345678"), id="b")
    weaker = dict(patient(given=("Bình",), birth="1985"), id="a")
    stranger = dict(patient(family="Lò", given=("Thị", "Mai"), birth="1950-01-01", gender="female"), id="c")
    candidates = [(str(c["id"]), patient_view(c)) for c in (stranger, weaker, exact)]
    ranked = score(patient_view(query), candidates, default_model())
    assert [r.id for r in ranked] == ["b", "a"]
    assert ranked[0].match.probability > ranked[1].match.probability


def test_a_broken_model_file_is_refused_with_the_reason() -> None:
    data = default_model().to_json()
    assert Model.from_json(copy.deepcopy(data)).to_json() == data
    broken = copy.deepcopy(data)
    del broken["m"]["given"]["fuzzy"]
    with pytest.raises(ValueError, match=r"m\[given\]\[fuzzy\]"):
        Model.from_json(broken)
    with pytest.raises(ValueError, match="prior"):
        Model.from_json(dict(data, prior=1.5))
