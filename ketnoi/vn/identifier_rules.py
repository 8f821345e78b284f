"""The data behind the Vietnamese identifier rules (:mod:`ketnoi.vn.identifiers`): system URIs, code
tables, the bilingual message catalogue and the FHIRPath invariants.

Each table names its legal source; docs/vn-identifiers.md says how far each was verified. They are data,
not logic, so that a change of law (a new beneficiary category, a new province) is a one-line edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any, NamedTuple

# Identifier systems. The first four are the VN Core IG's (hl7vn/vn-core-ig, draft): the NamingSystem
# uniqueIds, as fixed by the Patient and Provider profiles' identifier slices. The IG has none for the
# social-insurance number or practising licences, so those two are ketnoi's own.
CCCD_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/national_id"  # "thẻ căn cước công dân" (slice TheCCCD)
CMND_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/citizen_id"  # "số CMTND" (slice SoCMT)
BHYT_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/insurance_number"  # slice TheBHYT
# The Provider profile's MaCSKCB slice. The IG's NamingSystem sid-provider-code declares the operating-
# licence URI (.../provider-medical-license-number) instead, which would merge the two identifiers.
FACILITY_SYSTEM = "http://fhir.ehealth.gov.vn/core/sid/provider-code"
BHXH_SYSTEM = "https://fhir.ketnoi.vn/sid/bhxh"
LICENCE_SYSTEM = "https://fhir.ketnoi.vn/sid/cchn"

# The demo generator's own URIs (ketnoi/demo/ids.py) for the same identifiers, accepted by rule_for and
# the invariants so that data written before this module still validates. Its BHXH and licence URIs are
# already the ones above.
ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {
        "https://fhir.ketnoi.vn/sid/cccd": CCCD_SYSTEM,
        "https://fhir.ketnoi.vn/sid/bhyt": BHYT_SYSTEM,
        "https://fhir.ketnoi.vn/sid/ma-cskcb": FACILITY_SYSTEM,
    }
)

# The 63 provinces of QĐ 124/2004/QĐ-TTg (General Statistics Office codes), in force until 30/06/2025.
# Circular 07/2016/TT-BCA Art. 7 and Appendix I (kept by Circular 59/2021/TT-BCA Art. 7) use the same
# codes with a leading "0" as digits 1-3 of the personal identification number (CCCD): the province where
# the birth was registered. The 34 provinces in force from 01/07/2025 (codes: QĐ 19/2025/QĐ-TTg) each kept
# the code of one former province, so this list also covers births registered after the merger.
PROVINCES: MappingProxyType[str, str] = MappingProxyType(
    {
        "01": "Hà Nội",
        "02": "Hà Giang",
        "04": "Cao Bằng",
        "06": "Bắc Kạn",
        "08": "Tuyên Quang",
        "10": "Lào Cai",
        "11": "Điện Biên",
        "12": "Lai Châu",
        "14": "Sơn La",
        "15": "Yên Bái",
        "17": "Hòa Bình",
        "19": "Thái Nguyên",
        "20": "Lạng Sơn",
        "22": "Quảng Ninh",
        "24": "Bắc Giang",
        "25": "Phú Thọ",
        "26": "Vĩnh Phúc",
        "27": "Bắc Ninh",
        "30": "Hải Dương",
        "31": "Hải Phòng",
        "33": "Hưng Yên",
        "34": "Thái Bình",
        "35": "Hà Nam",
        "36": "Nam Định",
        "37": "Ninh Bình",
        "38": "Thanh Hóa",
        "40": "Nghệ An",
        "42": "Hà Tĩnh",
        "44": "Quảng Bình",
        "45": "Quảng Trị",
        "46": "Thừa Thiên Huế",
        "48": "Đà Nẵng",
        "49": "Quảng Nam",
        "51": "Quảng Ngãi",
        "52": "Bình Định",
        "54": "Phú Yên",
        "56": "Khánh Hòa",
        "58": "Ninh Thuận",
        "60": "Bình Thuận",
        "62": "Kon Tum",
        "64": "Gia Lai",
        "66": "Đắk Lắk",
        "67": "Đắk Nông",
        "68": "Lâm Đồng",
        "70": "Bình Phước",
        "72": "Tây Ninh",
        "74": "Bình Dương",
        "75": "Đồng Nai",
        "77": "Bà Rịa - Vũng Tàu",
        "79": "Thành phố Hồ Chí Minh",
        "80": "Long An",
        "82": "Tiền Giang",
        "83": "Bến Tre",
        "84": "Trà Vinh",
        "86": "Vĩnh Long",
        "87": "Đồng Tháp",
        "89": "An Giang",
        "91": "Kiên Giang",
        "92": "Cần Thơ",
        "93": "Hậu Giang",
        "94": "Sóc Trăng",
        "95": "Bạc Liêu",
        "96": "Cà Mau",
    }
)

# Characters 4-5 of a BHYT card: the social-insurance office that issued it. Provincial offices use the
# province codes above; the defence and police social-insurance agencies issue their own cards (QĐ 4750
# names the QN, HC, LS, XK, CY, CA cards they issue). 97 is attested for the Ministry of Defence (HIS
# configuration example "QN597..."); 98 for the police is an inference that no source seen confirms.
BHYT_ISSUERS: MappingProxyType[str, str] = MappingProxyType(
    {
        **PROVINCES,
        "97": "Bảo hiểm xã hội Bộ Quốc phòng",
        "98": "Bảo hiểm xã hội Công an nhân dân",
    }
)


class BhytCategory(NamedTuple):
    code: str
    name: str  # Vietnamese, as in the BHXH code list
    group: int  # 1-5: who pays the contribution (Law on Health Insurance Art. 12), see GROUPS
    level: int | None  # the benefit level (char 3) the category usually carries; None if no source gives it


BHYT_GROUPS: MappingProxyType[int, str] = MappingProxyType(
    {
        1: "Nhóm do người lao động và người sử dụng lao động đóng",
        2: "Nhóm do tổ chức bảo hiểm xã hội đóng",
        3: "Nhóm do ngân sách nhà nước đóng",
        4: "Nhóm được ngân sách nhà nước hỗ trợ mức đóng",
        5: "Nhóm tham gia bảo hiểm y tế theo hộ gia đình",
    }
)

# Characters 1-2 of a BHYT card: the beneficiary category (mã đối tượng), from the code list annexed to
# QĐ 1351/QĐ-BHXH (16/11/2015) on card numbering, as reproduced by secondary sources; QĐ 1351 itself was
# not opened (REFERENCE.md §5). The usual benefit level is informative only and not enforced: a person in
# several categories contributes under one and is paid at the most favourable level of all of them.
_CATEGORY_ROWS: tuple[tuple[str, int, int | None, str], ...] = (
    ("DN", 1, 4, "Người lao động làm việc trong doanh nghiệp"),
    ("HX", 1, 4, "Người lao động làm việc trong hợp tác xã, liên hiệp hợp tác xã"),
    ("CH", 1, 4, "Người lao động làm việc trong cơ quan nhà nước, đơn vị sự nghiệp, tổ chức chính trị, xã hội"),
    ("NN", 1, 4, "Người lao động làm việc trong cơ quan, tổ chức nước ngoài, tổ chức quốc tế tại Việt Nam"),
    ("TK", 1, 4, "Người lao động làm việc trong các tổ chức khác"),
    ("HC", 1, 4, "Cán bộ, công chức, viên chức"),
    ("XK", 1, 4, "Người hoạt động không chuyên trách ở xã, phường, thị trấn"),
    ("HT", 2, 3, "Người hưởng lương hưu, trợ cấp mất sức lao động hằng tháng"),
    ("TB", 2, 4, "Người hưởng trợ cấp bảo hiểm xã hội hằng tháng do tai nạn lao động, bệnh nghề nghiệp"),
    ("NO", 2, 4, "Người lao động nghỉ việc hưởng chế độ ốm đau do mắc bệnh cần chữa trị dài ngày"),
    ("CT", 2, 4, "Người từ đủ 80 tuổi trở lên đang hưởng trợ cấp tuất hằng tháng"),
    ("XB", 2, 4, "Cán bộ xã, phường, thị trấn đã nghỉ việc đang hưởng trợ cấp bảo hiểm xã hội hằng tháng"),
    ("TN", 2, 4, "Người đang hưởng trợ cấp thất nghiệp"),
    ("CS", 2, 4, "Công nhân cao su nghỉ việc đang hưởng trợ cấp hằng tháng"),
    ("QN", 3, 5, "Sĩ quan, quân nhân chuyên nghiệp, hạ sĩ quan, binh sĩ quân đội nhân dân"),
    ("CA", 3, 5, "Sĩ quan, hạ sĩ quan, chiến sĩ công an nhân dân"),
    ("CY", 3, 5, "Người làm công tác cơ yếu"),
    ("XN", 3, 4, "Cán bộ xã, phường, thị trấn đã nghỉ việc đang hưởng trợ cấp hằng tháng từ ngân sách nhà nước"),
    ("MS", 3, 4, "Người đã thôi hưởng trợ cấp mất sức lao động đang hưởng trợ cấp hằng tháng"),
    ("CC", 3, 1, "Người có công với cách mạng"),
    ("CK", 3, 2, "Người có công với cách mạng khác (không thuộc mã CC)"),
    ("CB", 3, 2, "Cựu chiến binh"),
    ("KC", 3, 2, "Người tham gia kháng chiến, bảo vệ Tổ quốc, làm nhiệm vụ quốc tế"),
    ("HD", 3, 4, "Đại biểu Quốc hội, đại biểu Hội đồng nhân dân các cấp đương nhiệm"),
    ("TE", 3, 1, "Trẻ em dưới 6 tuổi"),
    ("BT", 3, 2, "Người thuộc diện hưởng trợ cấp bảo trợ xã hội hằng tháng"),
    ("HN", 3, 2, "Người thuộc hộ gia đình nghèo"),
    ("DT", 3, 2, "Người dân tộc thiểu số đang sinh sống tại vùng có điều kiện kinh tế - xã hội khó khăn"),
    ("DK", 3, 2, "Người đang sinh sống tại vùng có điều kiện kinh tế - xã hội đặc biệt khó khăn"),
    ("XD", 3, 2, "Người đang sinh sống tại xã đảo, huyện đảo"),
    ("TS", 3, 2, "Thân nhân của liệt sĩ"),
    ("TC", 3, 3, "Thân nhân của người có công với cách mạng"),
    ("TQ", 3, 4, "Thân nhân của quân nhân"),
    ("TV", 3, None, "Thân nhân của công nhân, viên chức quốc phòng"),
    ("TA", 3, 4, "Thân nhân của công an nhân dân"),
    ("TY", 3, 4, "Thân nhân của người làm công tác cơ yếu"),
    ("HG", 3, 4, "Người đã hiến bộ phận cơ thể người"),
    ("LS", 3, 4, "Người nước ngoài đang học tập tại Việt Nam được cấp học bổng từ ngân sách nhà nước"),
    ("PV", 3, 4, "Người phục vụ người có công với cách mạng"),
    ("CN", 4, 3, "Người thuộc hộ gia đình cận nghèo"),
    ("HS", 4, 4, "Học sinh"),
    ("SV", 4, 4, "Sinh viên"),
    ("GB", 4, 4, "Người thuộc hộ gia đình nông, lâm, ngư, diêm nghiệp có mức sống trung bình"),
    ("GD", 5, 4, "Người tham gia bảo hiểm y tế theo hộ gia đình"),
)
BHYT_CATEGORIES: MappingProxyType[str, BhytCategory] = MappingProxyType(
    {code: BhytCategory(code, name, group, level) for code, group, level, name in _CATEGORY_ROWS}
)

# Character 3 of a BHYT card: the benefit level (mã quyền lợi), QĐ 1351/QĐ-BHXH; percentages follow the
# Law on Health Insurance Art. 22 (secondary sources; REFERENCE.md §2b marks the table uncertain).
BHYT_LEVELS: MappingProxyType[int, str] = MappingProxyType(
    {
        1: "100% chi phí, không giới hạn tỷ lệ thanh toán thuốc, vật tư, dịch vụ kỹ thuật; có chi phí vận chuyển",
        2: "100% chi phí, có giới hạn tỷ lệ thanh toán thuốc, vật tư, dịch vụ kỹ thuật; có chi phí vận chuyển",
        3: "95% chi phí khám bệnh, chữa bệnh",
        4: "80% chi phí khám bệnh, chữa bệnh",
        5: "100% chi phí, kể cả ngoài phạm vi được hưởng bảo hiểm y tế; có chi phí vận chuyển",
    }
)


# Digit 4 of a CCCD: sex and century, Circular 07/2016/TT-BCA Art. 7(2) (same in 59/2021/TT-BCA): even
# digits male, odd female; 0/1 → 1900-1999, 2/3 → 2000-2099, 4/5 → 2100s, 6/7 → 2200s, 8/9 → 2300s.
def century_start(digit: int) -> int:
    """First year of the century that CCCD digit 4 encodes."""
    return 1900 + 100 * (digit // 2)


# The bilingual problem messages, by problem code. A "*-" entry serves every identifier kind that has no
# entry of its own. Fields: {v} the value in canonical form, {raw} as given, {en_name}/{vi_name} the
# identifier's name; the other fields are named where the message is used (ketnoi.vn.identifiers).
MESSAGES: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "*-empty": (
            "{en_name} is empty: enter the number as printed on the card or document.",
            "{vi_name} đang để trống: nhập số như in trên thẻ hoặc giấy tờ.",
        ),
        "*-not-normalized": (
            "{en_name} {raw!r}: store it in canonical form, {v}.",
            "{vi_name} {raw!r}: cần lưu ở dạng chuẩn là {v}.",
        ),
        "*-characters": (
            "{en_name} {v}: contains {bad}, but may contain {allowed_en} only; check the card or document.",
            "{vi_name} {v}: có ký tự {bad}, nhưng chỉ được gồm {allowed_vi}; kiểm tra lại thẻ hoặc giấy tờ.",
        ),
        "*-length": (
            "{en_name} {v}: has {n} characters; it must have {expected}.",
            "{vi_name} {v}: có {n} ký tự; phải có đúng {expected} ký tự.",
        ),
        "cccd-leading-zero": (
            "CCCD {v}: 11 digits, probably its leading 0 was lost (claims XML under QĐ 130 stored SO_CCCD as "
            "a number); enter all 12 digits from the card.",
            "Số CCCD {v}: có 11 chữ số, có thể đã mất số 0 ở đầu (XML theo QĐ 130 từng lưu SO_CCCD dạng số); "
            "nhập đủ 12 chữ số theo thẻ.",
        ),
        "cccd-is-cmnd": (
            "CCCD {v}: 9 digits is an old identity card (CMND) number; record it under " + CMND_SYSTEM + ".",
            "Số CCCD {v}: 9 chữ số là số chứng minh nhân dân (CMND) cũ; ghi theo hệ định danh " + CMND_SYSTEM + ".",
        ),
        "cccd-province": (
            "CCCD {v}: digits 1-3 ({ppp}) are not a province code of birth registration (001-096, Circular "
            "07/2016/TT-BCA); check the card. A birth registered abroad carries a country code, which this "
            "check does not know.",
            "Số CCCD {v}: chữ số 1-3 ({ppp}) không phải mã tỉnh nơi đăng ký khai sinh (001-096, Thông tư "
            "07/2016/TT-BCA); kiểm tra lại thẻ. Người đăng ký khai sinh ở nước ngoài mang mã quốc gia, phép "
            "kiểm tra này chưa có danh mục đó.",
        ),
        "cccd-century": (
            "CCCD {v}: digit 4 ({d}) and digits 5-6 ({yy}) say born in {year}, which is in the future; check the card.",
            "Số CCCD {v}: chữ số thứ 4 ({d}) và chữ số 5-6 ({yy}) cho năm sinh {year}, là năm trong tương lai; "
            "kiểm tra lại thẻ.",
        ),
        "cccd-birth-century": (
            "CCCD {v}: digit 4 ({d}) says born in {start}-{end}, but birthDate is {birth_date}; check the card "
            "and the birth date.",
            "Số CCCD {v}: chữ số thứ 4 ({d}) cho biết sinh trong khoảng {start}-{end}, nhưng ngày sinh "
            "(birthDate) là {birth_date}; kiểm tra lại thẻ và ngày sinh.",
        ),
        "cccd-birth-year": (
            "CCCD {v}: digits 5-6 ({yy}) say born in {year}, but birthDate is {birth_date}; check the card and "
            "the birth date.",
            "Số CCCD {v}: chữ số 5-6 ({yy}) cho năm sinh {year}, nhưng ngày sinh (birthDate) là {birth_date}; "
            "kiểm tra lại thẻ và ngày sinh.",
        ),
        "cccd-gender": (
            "CCCD {v}: digit 4 ({d}) means {sex_en}, but gender is {gender_en}; check the card and the recorded "
            "gender.",
            "Số CCCD {v}: chữ số thứ 4 ({d}) chỉ giới tính {sex_vi}, nhưng giới tính (gender) ghi là "
            "{gender_vi}; kiểm tra lại thẻ và giới tính.",
        ),
        "cmnd-is-cccd": (
            "CMND {v}: 12 digits is a personal identification number (12-digit CMND or CCCD); record it under "
            + CCCD_SYSTEM
            + ".",
            "Số CMND {v}: 12 chữ số là số định danh cá nhân (CMND 12 số hoặc CCCD); ghi theo hệ định danh "
            + CCCD_SYSTEM
            + ".",
        ),
        "bhyt-is-bhxh": (
            "BHYT card {v}: 10 digits is a social-insurance number, not a card number; record it under "
            + BHXH_SYSTEM
            + ", or enter the 15-character card number.",
            "Mã thẻ BHYT {v}: 10 chữ số là mã số BHXH, không phải mã thẻ; ghi theo hệ định danh "
            + BHXH_SYSTEM
            + " hoặc nhập mã thẻ đủ 15 ký tự.",
        ),
        "bhyt-category-format": (
            "BHYT card {v}: characters 1-2 ({cat}) must be the two-letter beneficiary category.",
            "Mã thẻ BHYT {v}: ký tự 1-2 ({cat}) phải là mã đối tượng gồm 2 chữ cái.",
        ),
        "bhyt-category": (
            "BHYT card {v}: characters 1-2 ({cat}) are not a beneficiary category of QĐ 1351/QĐ-BHXH; check "
            "the card (if it is genuine, the category list needs updating).",
            "Mã thẻ BHYT {v}: ký tự 1-2 ({cat}) không phải mã đối tượng theo QĐ 1351/QĐ-BHXH; kiểm tra lại thẻ "
            "(nếu thẻ đúng thì cần cập nhật danh mục).",
        ),
        "bhyt-level": (
            "BHYT card {v}: character 3 ({level}) must be the benefit level, 1 to 5.",
            "Mã thẻ BHYT {v}: ký tự thứ 3 ({level}) phải là mã quyền lợi (mức hưởng) từ 1 đến 5.",
        ),
        "bhyt-province": (
            "BHYT card {v}: characters 4-5 ({pp}) are not the province code of a social-insurance office; "
            "check the card.",
            "Mã thẻ BHYT {v}: ký tự 4-5 ({pp}) không phải mã tỉnh của cơ quan BHXH cấp thẻ; kiểm tra lại thẻ.",
        ),
        "bhyt-bhxh": (
            "BHYT card {v}: characters 6-15 ({bhxh}) must be the 10-digit social-insurance number.",
            "Mã thẻ BHYT {v}: ký tự 6-15 ({bhxh}) phải là mã số BHXH gồm 10 chữ số.",
        ),
        "bhyt-temporary": (
            "BHYT card {v}: a newborn's temporary card starts with TE1 (child under 6, level 1), not {prefix}.",
            "Mã thẻ BHYT {v}: thẻ tạm của trẻ sơ sinh bắt đầu bằng TE1 (trẻ em dưới 6 tuổi, mức hưởng 1), "
            "không phải {prefix}.",
        ),
        "bhxh-is-bhyt": (
            "Social-insurance number {v}: this is a BHYT card number; the social-insurance number is its last "
            "10 digits, {bhxh}.",
            "Mã số BHXH {v}: đây là mã thẻ BHYT; mã số BHXH là 10 chữ số cuối của thẻ, {bhxh}.",
        ),
        "facility-province": (
            "Facility code {v}: digits 1-2 ({pp}) are not a province code; check the code in the "
            "social-insurance facility list.",
            "Mã cơ sở KCB {v}: chữ số 1-2 ({pp}) không phải mã tỉnh; kiểm tra lại theo danh mục cơ sở KCB của BHXH.",
        ),
        "facility-placeholder": (
            "Facility code {v}: {pp}000 is the placeholder a temporary BHYT card carries, not a facility; enter "
            "the real facility code.",
            "Mã cơ sở KCB {v}: {pp}000 là mã giữ chỗ của thẻ BHYT tạm, không phải cơ sở KCB; nhập mã cơ sở thật.",
        ),
        "licence-multiple": (
            "Practising licence {v}: holds several numbers separated by ';'; record one per practitioner.",
            "Số chứng chỉ hành nghề {v}: có nhiều số cách nhau bởi ';'; mỗi người hành nghề ghi một số.",
        ),
        "licence-length": (
            "Practising licence {v}: has {n} characters; expected {low} to {high}.",
            "Số chứng chỉ hành nghề {v}: có {n} ký tự; cần từ {low} đến {high} ký tự.",
        ),
        "licence-no-digit": (
            "Practising licence {v}: has no digit, so it is no certificate number (a name or a title?).",
            "Số chứng chỉ hành nghề {v}: không có chữ số nên không phải số chứng chỉ (có phải tên hoặc chức danh?).",
        ),
    }
)


# --- FHIRPath invariants on Patient (ElementDefinition.constraint) ---


def _identifiers(system: str, shape: str | None = None) -> str:
    """Patient identifiers of a system (or its aliases), optionally only those matching a regex."""
    uris = " | ".join(f"'{u}'" for u in (system, *(a for a, c in ALIASES.items() if c == system)))
    where = f"system in ({uris})" + (f" and value.matches('{shape}')" if shape else "")
    return f"identifier.where({where})"


def _one_of(codes: Iterable[str]) -> str:
    return "(" + " | ".join(f"'{c}'" for c in codes) + ")"


_CCCD_SHAPE = "^[0-9]{12}$"
_BHYT_SHAPE = "^[A-Z]{2}[1-5][0-9]{12}$"
# Birth year from a CCCD: century from digit 4 (century_start), then digits 5-6 (substring is 0-based).
_CCCD_YEAR = "1900 + 100 * (value.substring(3, 1).toInteger() div 2) + value.substring(4, 2).toInteger()"
_CCCD_SEX = "iif(value.substring(3, 1).toInteger() mod 2 = 0, 'male', 'female')"


def invariants() -> list[dict[str, Any]]:
    """Constraints on Patient that any FHIRPath R4 engine can evaluate (``%context`` is the Patient).

    Each guards its own precondition (``birthDate.empty() or ...``) so that it yields true or false, never
    an empty result, which validators treat inconsistently.
    """
    cccd, cccd12 = _identifiers(CCCD_SYSTEM), _identifiers(CCCD_SYSTEM, _CCCD_SHAPE)
    bhyt, bhyt15 = _identifiers(BHYT_SYSTEM), _identifiers(BHYT_SYSTEM, _BHYT_SHAPE)
    rows = (
        (
            "vn-cccd-1",
            "A CCCD (personal identification number) has exactly 12 digits.",
            f"{cccd}.all(value.matches('{_CCCD_SHAPE}'))",
            "Circular 07/2016/TT-BCA Art. 7(1)",
        ),
        (
            "vn-cccd-2",
            "The birth year in a CCCD (century in digit 4, year in digits 5-6) is the year of birthDate.",
            f"birthDate.empty() or {cccd12}.all({_CCCD_YEAR} = %context.birthDate.toString().substring(0, 4)"
            ".toInteger())",
            "Circular 07/2016/TT-BCA Art. 7(2)-(3)",
        ),
        (
            "vn-cccd-3",
            "The sex in digit 4 of a CCCD (even male, odd female) agrees with a male or female gender.",
            f"gender.empty() or (gender in ('male' | 'female')).not() or {cccd12}.all({_CCCD_SEX} = %context.gender)",
            "Circular 07/2016/TT-BCA Art. 7(2)",
        ),
        (
            "vn-cccd-4",
            "Digits 1-3 of a CCCD are a province code of birth registration (001-096).",
            f"{cccd12}.all(value.substring(0, 3) in {_one_of('0' + p for p in PROVINCES)})",
            "Circular 07/2016/TT-BCA Art. 7(1), Appendix I",
        ),
        (
            "vn-bhyt-1",
            "A BHYT card number is 2 letters, a benefit level 1-5, and 12 digits (province + BHXH number).",
            f"{bhyt}.all(value.matches('{_BHYT_SHAPE}'))",
            "QĐ 1351/QĐ-BHXH; QĐ 4750/QĐ-BYT (MA_THE_BHYT)",
        ),
        (
            "vn-bhyt-2",
            "Characters 1-2 of a BHYT card number are a known beneficiary category.",
            f"{bhyt15}.all(value.substring(0, 2) in {_one_of(BHYT_CATEGORIES)})",
            "QĐ 1351/QĐ-BHXH",
        ),
        (
            "vn-bhyt-3",
            "Characters 4-5 of a BHYT card number are the province code of a social-insurance office.",
            f"{bhyt15}.all(value.substring(3, 2) in {_one_of(BHYT_ISSUERS)})",
            "QĐ 1351/QĐ-BHXH",
        ),
    )
    return [
        {"key": key, "requirements": source, "severity": "error", "human": human, "expression": expression}
        for key, human, expression, source in rows
    ]
