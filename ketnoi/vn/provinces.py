"""The 34 province-level units of Vietnam in force since 01/07/2025 (QĐ 19/2025/QĐ-TTg, two-level
administration, no districts), each with the 2-digit code it kept from a former province.

Data and a lookup only: the console's registry forms offer these names, the synthetic population
(``ketnoi.demo.places``) adds its communes to them. The 63 provinces before the merger, whose codes
still begin older CCCD numbers, are ``identifier_rules.PROVINCES``.
"""

from __future__ import annotations

import unicodedata
from types import MappingProxyType
from typing import NamedTuple


class Province(NamedTuple):
    code: str  # 2 digits
    name: str  # without the "Tỉnh"/"Thành phố" prefix, NFC
    kind: str  # "Tỉnh" (province) or "Thành phố" (centrally-governed city)

    @property
    def full_name(self) -> str:
        return f"{self.kind} {self.name}"


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("01", "Hà Nội", "Thành phố"),
    ("04", "Cao Bằng", "Tỉnh"),
    ("08", "Tuyên Quang", "Tỉnh"),
    ("11", "Điện Biên", "Tỉnh"),
    ("12", "Lai Châu", "Tỉnh"),
    ("14", "Sơn La", "Tỉnh"),
    ("15", "Lào Cai", "Tỉnh"),
    ("19", "Thái Nguyên", "Tỉnh"),
    ("20", "Lạng Sơn", "Tỉnh"),
    ("22", "Quảng Ninh", "Tỉnh"),
    ("24", "Bắc Ninh", "Tỉnh"),
    ("25", "Phú Thọ", "Tỉnh"),
    ("31", "Hải Phòng", "Thành phố"),
    ("33", "Hưng Yên", "Tỉnh"),
    ("37", "Ninh Bình", "Tỉnh"),
    ("38", "Thanh Hóa", "Tỉnh"),
    ("40", "Nghệ An", "Tỉnh"),
    ("42", "Hà Tĩnh", "Tỉnh"),
    ("44", "Quảng Trị", "Tỉnh"),
    ("46", "Huế", "Thành phố"),
    ("48", "Đà Nẵng", "Thành phố"),
    ("51", "Quảng Ngãi", "Tỉnh"),
    ("52", "Gia Lai", "Tỉnh"),
    ("56", "Khánh Hòa", "Tỉnh"),
    ("66", "Đắk Lắk", "Tỉnh"),
    ("68", "Lâm Đồng", "Tỉnh"),
    ("75", "Đồng Nai", "Tỉnh"),
    ("79", "Hồ Chí Minh", "Thành phố"),
    ("80", "Tây Ninh", "Tỉnh"),
    ("82", "Đồng Tháp", "Tỉnh"),
    ("86", "Vĩnh Long", "Tỉnh"),
    ("91", "An Giang", "Tỉnh"),
    ("92", "Cần Thơ", "Thành phố"),
    ("96", "Cà Mau", "Tỉnh"),
)

PROVINCES: tuple[Province, ...] = tuple(
    Province(code, unicodedata.normalize("NFC", name), kind) for code, name, kind in _ROWS
)
BY_CODE: MappingProxyType[str, Province] = MappingProxyType({p.code: p for p in PROVINCES})


def province(code: str) -> Province | None:
    """The province with this 2-digit code, None when no province in force has it."""
    return BY_CODE.get(code)
