"""Vietnamese personal names and ethnic groups, with sampling weights.

Family-name weights are the *national* shares (Nguyễn ~38 %, Trần ~11 %, Lê ~9.5 %, ...). A few ethnic
groups use their own naming (H'Mông, Khmer, Hoa, Central-Highlands groups); ``FAMILY_KINH_STYLE`` is
rescaled so that the national shares still hold once those groups are mixed in (see
``kinh_style_scale``). All strings are NFC.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple


def _nfc_split(s: str) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", x) for x in s.split())


# National shares in percent. "Hoàng" and "Vũ" are written Huỳnh / Võ mostly in the south.
FAMILY_TARGETS: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 38.0),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.0),
    ("Hoàng", 5.1),
    ("Phan", 4.5),
    ("Vũ", 3.9),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
)
# The long tail shares whatever is left, equally.
FAMILY_TAIL: tuple[str, ...] = _nfc_split(
    "Đinh Trương Lâm Mai Đoàn Cao Lưu Tạ Hà Trịnh Lương Tô Chu Châu Vương Thái Kiều Lại Triệu Khúc La "
    "Thân Tôn Quách Văn Đào Kim Nghiêm Mạc Lục"
)
SOUTHERN_VARIANT = {"Hoàng": "Huỳnh", "Vũ": "Võ"}

MIDDLE_MALE = _nfc_split("Văn Hữu Đức Minh Quang Công Thành Xuân Ngọc Anh Gia Trọng Quốc Tuấn Đình Bảo Hoàng Mạnh")
MIDDLE_FEMALE = _nfc_split("Thị Ngọc Thu Thanh Minh Phương Hồng Kim Mai Bảo Khánh Hải Hoài Diệu Quỳnh Thùy Mỹ")
GIVEN_MALE = _nfc_split(
    "An Anh Bảo Bình Cường Dũng Dương Đạt Đức Hải Hiếu Hòa Hoàng Hùng Huy Khang Khánh Khoa Kiên Lâm Long "
    "Lộc Minh Nam Nghĩa Nhân Phát Phong Phúc Quân Quang Sơn Tài Tâm Thành Thắng Thịnh Toàn Trung Tuấn Tùng "
    "Việt Vinh Vũ Hưng Hậu Thái Tiến Tú"
)
GIVEN_FEMALE = _nfc_split(
    "An Anh Chi Diệp Dung Duyên Giang Hà Hằng Hạnh Hiền Hoa Hồng Huệ Hương Lan Linh Loan Mai My Nga Ngân "
    "Ngọc Nhung Oanh Phương Quyên Tâm Thảo Thu Thủy Trang Trâm Tuyết Uyên Vân Vy Yến Nhi Hoa Lý Liên"
)

# Ethnic groups: code (GSO list of 54 groups, see docs), display, naming style.
KINH = "01"


class Ethnicity(NamedTuple):
    code: str
    display: str
    style: str  # "kinh" (Vietnamese-form names), "hmong", "khmer", "hoa", "highlands"


ETHNICITIES: dict[str, Ethnicity] = {
    e.code: e
    for e in (
        Ethnicity("01", "Kinh", "kinh"),
        Ethnicity("02", "Tày", "kinh"),
        Ethnicity("03", "Thái", "kinh"),
        Ethnicity("04", "Hoa", "hoa"),
        Ethnicity("05", "Khơ-me", "khmer"),
        Ethnicity("06", "Mường", "kinh"),
        Ethnicity("07", "Nùng", "kinh"),
        Ethnicity("08", "HMông", "hmong"),
        Ethnicity("09", "Dao", "kinh"),
        Ethnicity("10", "Gia-rai", "highlands"),
        Ethnicity("12", "Ê-đê", "highlands"),
        Ethnicity("13", "Ba na", "highlands"),
        Ethnicity("14", "Xơ-Đăng", "highlands"),
        Ethnicity("17", "Chăm", "kinh"),
        Ethnicity("19", "Hrê", "kinh"),
        Ethnicity("20", "Mnông", "highlands"),
        Ethnicity("21", "Ra-glai", "kinh"),
        Ethnicity("26", "Cơ-tu", "kinh"),
        Ethnicity("29", "Khơ-mú", "kinh"),
    )
}

# Ethnic mix per region (weights). Approximate, from the shape of the 2019 census.
REGION_ETHNICITY: dict[str, tuple[tuple[str, float], ...]] = {
    "NM": (("01", 40), ("02", 13), ("03", 13), ("06", 7), ("07", 9), ("08", 11), ("09", 6), ("29", 1)),
    "RRD": (("01", 98.8), ("06", 0.6), ("04", 0.3), ("02", 0.3)),
    "NC": (("01", 88), ("03", 6), ("06", 4.5), ("08", 1), ("29", 0.5)),
    "SC": (("01", 92), ("17", 2.5), ("19", 2.5), ("26", 1.5), ("21", 1.5)),
    "CH": (("01", 62), ("10", 13), ("12", 11), ("13", 7), ("14", 4), ("20", 3)),
    "SE": (("01", 95.5), ("04", 3.5), ("05", 1)),
    "MK": (("01", 90.5), ("05", 8), ("04", 1.5)),
}

# Own naming for some groups: (family names, male middle, female middle, male given, female given).
HMONG = (
    _nfc_split("Giàng Sùng Vàng Thào Lý Mùa Hầu Lầu Hạng Chảo"),
    _nfc_split("A"),
    _nfc_split("Thị"),
    _nfc_split("Páo Dính Chứ Sình Lử Tủa Pó Sử Chúng Của"),
    _nfc_split("Mỷ Súa Dua Chá Pằng Máy Sính Dế Chở Lan"),
)
KHMER = (
    _nfc_split("Thạch Sơn Kim Danh Lâm Châu Trà Lý"),
    _nfc_split("Văn Sóc Minh"),
    _nfc_split("Thị"),
    _nfc_split("Sóc Phên Chanh Thươl Rết Sa Vy Ni"),
    _nfc_split("Sa Ly Phia Mây Sà Rết Thy Sóc Kha"),
)
HOA = (
    _nfc_split("Lâm Quách Trương Lưu Hứa Mạch Tăng Diệp Lý Trần"),
    _nfc_split("Văn Vĩnh Gia Chí"),
    _nfc_split("Thị Mỹ Ngọc Tú"),
    _nfc_split("Cường Phát Hào Khải Vinh Quân Kiệt"),
    _nfc_split("Linh Mẫn Tú Hoa Lệ Quyên Phụng"),
)
# Central-Highlands names are written given-first: "Y Moan Niê", "H'Linh Ksor".
HIGHLANDS = (
    _nfc_split("Niê Ksor Siu Nay Mlô Êban Byă Rơ-mah Kpă Alê"),
    _nfc_split("Y"),
    _nfc_split("H'"),
    _nfc_split("Moan Bhin Khôi Thuân Ngông Jut Blin Kông"),
    _nfc_split("Linh Hen Nhi Yơn Bla Duyên Mai"),
)
OWN_STYLE = {"hmong": HMONG, "khmer": KHMER, "hoa": HOA, "highlands": HIGHLANDS}


class NameParts(NamedTuple):
    family: str
    middle: str  # may be "" for none
    given: str
    given_first: bool  # text order "middle given family" (Central Highlands) instead of "family middle given"

    @property
    def given_list(self) -> list[str]:
        return [self.middle, self.given] if self.middle else [self.given]

    @property
    def text(self) -> str:
        if self.given_first:
            head = f"{self.middle}{self.given}" if self.middle.endswith("'") else " ".join(self.given_list)
            return f"{head} {self.family}"
        return " ".join((self.family, *self.given_list))


def middle_weights(female: bool, birth_year: int) -> tuple[tuple[str, ...], list[float]]:
    """Middle names and weights: Văn/Thị dominate older cohorts and fade in younger ones."""
    names = MIDDLE_FEMALE if female else MIDDLE_MALE
    if birth_year < 1975:
        top = 0.72 if female else 0.55
    elif birth_year < 1995:
        top = 0.45 if female else 0.32
    else:
        top = 0.18 if female else 0.12
    rest = (1.0 - top) / (len(names) - 1)
    return names, [top] + [rest] * (len(names) - 1)


_STRIP = str.maketrans({"đ": "d", "Đ": "D"})


def strip_diacritics(s: str) -> str:
    """ "Nguyễn Văn Đức" → "Nguyen Van Duc" (NFD, drop combining marks, đ → d)."""
    decomposed = unicodedata.normalize("NFD", s.translate(_STRIP))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(s: str) -> str:
    """Comparison key: no diacritics, lower case."""
    return strip_diacritics(s).lower()
