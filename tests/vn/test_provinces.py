"""The 34 provinces in force since 01/07/2025: one table for the console and the synthetic population."""

from __future__ import annotations

from ketnoi.console import registry_fields
from ketnoi.demo import places
from ketnoi.vn import identifier_rules, provinces


def test_thirty_four_provinces_each_with_a_code_kept_from_a_former_one() -> None:
    assert len(provinces.PROVINCES) == 34 == len(provinces.BY_CODE)
    assert all(p.code in identifier_rules.PROVINCES for p in provinces.PROVINCES)
    hanoi = provinces.province("01")
    assert hanoi is not None and hanoi.full_name == "Thành phố Hà Nội"
    assert provinces.province("02") is None  # Hà Giang, merged into Tuyên Quang


def test_the_demo_and_the_console_read_the_same_table() -> None:
    assert [(p.code, p.name, p.kind) for p in places.PROVINCES] == list(provinces.PROVINCES)
    assert sorted(registry_fields.PROVINCE_NAMES) == sorted(p.name for p in provinces.PROVINCES)
