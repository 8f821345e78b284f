"""Data, not logic: the tables of QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT, from /work/shared/vn/xml130_schema.md.

``LAYOUTS`` gives each table's element names (schema §1 and each table's "Elements:" line, from BHXH guide
1245/BHXH-CNTT). ``FIELDS`` gives, for XML0..XML5, every field in the schema's order with its type and size
from the column "Effective (after 4750)" and "mandatory" from the column "Req." = ``x``. The Req. column is
marked **uncertain** in the schema (a validation workbook of unstated provenance), and conditional
requirements ("bắt buộc khi ...") are not marked mandatory here: they are cross-field rules for a later step.
3176/QĐ-BYT changes are not applied (the schema does not have them either).

Kinds (how the text is parsed, see ``ketnoi.xml130.values``): the schema's "Chuỗi" (string) and "Số"
(number) are refined from §2 and the field meanings: 12-character NGAY_* fields are date-times, 8-character
ones dates; NGAY_SINH is a date-time whose ``0000`` time means "not known"; "Số" amounts, prices and
quantities are decimals with the scale of §2 (quantities and unit prices 3, amounts 2), other "Số" fields are
whole numbers; CAN_NANG is "Chuỗi 6" but holds kilograms with 2 decimals (XML1 #59).
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"
INTEGER = "integer"
DECIMAL = "decimal"
DATE = "date"
DATETIME = "datetime"
BIRTH = "birth"
DATE_OR_DATETIME = "date-or-datetime"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its element name, kind, maximum size (``None`` = the schema's "n"), mandatory or not.

    ``multi``: the value is a ``;``-separated list (§2); the size applies to the whole text.
    ``scale``: the most decimals a decimal may have (§2).
    """

    name: str
    kind: str
    size: int | None
    mandatory: bool
    multi: bool = False
    scale: int | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """A table document's root element and, for tables of many rows, the repeated row element.

    ``row`` is ``None`` for one-row tables (XML1, XML7, ...): the root itself holds the fields.
    """

    root: str
    row: str | None


# Schema §1 (container) and the "Elements:" line of each table. XML12 is entered on the BHXH portal and has
# no published file structure, so it is not here: a FILEHOSO claiming to be XML12 is an unknown table.
LAYOUTS: dict[str, Layout] = {
    "XML0": Layout("CHI_TIEU_TRANG_THAI_KCB", "TRANG_THAI_KCB"),
    "XML1": Layout("TONG_HOP", None),
    "XML2": Layout("CHITIEU_CHITIET_THUOC", "CHI_TIET_THUOC"),
    "XML3": Layout("CHITIEU_CHITIET_DVKT_VTYT", "CHI_TIET_DVKT"),
    "XML4": Layout("CHITIEU_CHITIET_DICHVUCANLAMSANG", "CHI_TIET_CLS"),
    "XML5": Layout("CHITIEU_CHITIET_DIENBIENLAMSANG", "CHI_TIET_DIEN_BIEN_BENH"),
    "XML6": Layout(
        "CHI_TIEU_HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS", "HO_SO_BENH_AN_CHAM_SOC_VA_DIEU_TRI_HIV_AIDS"
    ),
    "XML7": Layout("CHI_TIEU_DU_LIEU_GIAY_RA_VIEN", None),
    "XML8": Layout("CHI_TIEU_DU_LIEU_TOM_TAT_HO_SO_BENH_AN", None),
    "XML9": Layout("CHI_TIEU_DU_LIEU_GIAY_CHUNG_SINH", "DU_LIEU_GIAY_CHUNG_SINH"),
    "XML10": Layout("CHI_TIEU_DU_LIEU_GIAY_NGHI_DUONG_THAI", None),
    "XML11": Layout("CHI_TIEU_DU_LIEU_GIAY_CHUNG_NHAN_NGHI_VIEC_HUONG_BAO_HIEM_XA_HOI", None),
    "XML13": Layout("CHI_TIEU_GIAYCHUYENTUYEN", None),
    "XML14": Layout("CHI_TIEU_GIAYHEN_KHAMLAI", None),
    "XML15": Layout("CHI_TIEU_DIEUTRI_BENHLAO", "CHITIET_DIEUTRI_BENHLAO"),
}

TABLE_BY_ROOT: dict[str, str] = {layout.root: table for table, layout in LAYOUTS.items()}

# Per table, in the schema's order. Transcribed from the schema's tables (sections "## XML0" .. "## XML5").
FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    # XML0: schema section "## XML0", column "Effective (after 4750)".
    "XML0": (
        FieldSpec("MA_LK", TEXT, 100, True),
        FieldSpec("STT", INTEGER, 10, True),
        FieldSpec("MA_BN", TEXT, 100, True),
        FieldSpec("HO_TEN", TEXT, 255, True),
        FieldSpec("SO_CCCD", TEXT, 15, False),
        FieldSpec("NGAY_SINH", BIRTH, 12, True),
        FieldSpec("GIOI_TINH", INTEGER, 1, True),
        FieldSpec("MA_THE_BHYT", TEXT, 15, False, multi=True),
        FieldSpec("MA_DKBD", TEXT, 5, False, multi=True),
        FieldSpec("GT_THE_TU", DATE, 8, False, multi=True),
        FieldSpec("GT_THE_DEN", DATE, 8, False, multi=True),
        FieldSpec("MA_DOITUONG_KCB", TEXT, 4, True),
        FieldSpec("NGAY_VAO", DATETIME, 12, True),
        FieldSpec("NGAY_VAO_NOI_TRU", DATETIME, 12, False),
        FieldSpec("LY_DO_VNT", TEXT, None, False),
        FieldSpec("MA_LY_DO_VNT", TEXT, 5, False),
        FieldSpec("MA_LOAI_KCB", TEXT, 2, True),
        FieldSpec("MA_CSKCB", TEXT, 5, True),
        FieldSpec("MA_DICH_VU", TEXT, 50, False),
        FieldSpec("TEN_DICH_VU", TEXT, 1024, False),
        FieldSpec("MA_THUOC", TEXT, 255, False),
        FieldSpec("TEN_THUOC", TEXT, 1024, False),
        FieldSpec("MA_VAT_TU", TEXT, 255, False),
        FieldSpec("TEN_VAT_TU", TEXT, 1024, False),
        FieldSpec("NGAY_YL", DATETIME, 12, True),
        FieldSpec("DU_PHONG", TEXT, None, False),
    ),
    # XML1: schema section "## XML1", column "Effective (after 4750)".
    "XML1": (
        FieldSpec("MA_LK", TEXT, 100, True),
        FieldSpec("STT", INTEGER, 10, False),
        FieldSpec("MA_BN", TEXT, 100, True),
        FieldSpec("HO_TEN", TEXT, 255, True),
        FieldSpec("SO_CCCD", TEXT, 15, False),
        FieldSpec("NGAY_SINH", BIRTH, 12, True),
        FieldSpec("GIOI_TINH", INTEGER, 1, True),
        FieldSpec("NHOM_MAU", TEXT, 5, False),
        FieldSpec("MA_QUOCTICH", TEXT, 3, True),
        FieldSpec("MA_DANTOC", TEXT, 2, True),
        FieldSpec("MA_NGHE_NGHIEP", TEXT, 5, True),
        FieldSpec("DIA_CHI", TEXT, 1024, True),
        FieldSpec("MATINH_CU_TRU", TEXT, 3, True),
        FieldSpec("MAHUYEN_CU_TRU", TEXT, 3, True),
        FieldSpec("MAXA_CU_TRU", TEXT, 5, True),
        FieldSpec("DIEN_THOAI", TEXT, 15, False),
        FieldSpec("MA_THE_BHYT", TEXT, None, False, multi=True),
        FieldSpec("MA_DKBD", TEXT, None, False, multi=True),
        FieldSpec("GT_THE_TU", DATE, None, False, multi=True),
        FieldSpec("GT_THE_DEN", DATE, None, False, multi=True),
        FieldSpec("NGAY_MIEN_CCT", DATE_OR_DATETIME, 12, False),
        FieldSpec("LY_DO_VV", TEXT, None, True),
        FieldSpec("LY_DO_VNT", TEXT, None, False),
        FieldSpec("MA_LY_DO_VNT", TEXT, 5, False),
        FieldSpec("CHAN_DOAN_VAO", TEXT, None, True),
        FieldSpec("CHAN_DOAN_RV", TEXT, None, True),
        FieldSpec("MA_BENH_CHINH", TEXT, 7, True),
        FieldSpec("MA_BENH_KT", TEXT, 100, False, multi=True),
        FieldSpec("MA_BENH_YHCT", TEXT, 255, False),
        FieldSpec("MA_PTTT_QT", TEXT, 125, False, multi=True),
        FieldSpec("MA_DOITUONG_KCB", TEXT, 4, True),
        FieldSpec("MA_NOI_DI", TEXT, 5, False),
        FieldSpec("MA_NOI_DEN", TEXT, 5, False),
        FieldSpec("MA_TAI_NAN", INTEGER, 1, False),
        FieldSpec("NGAY_VAO", DATETIME, 12, True),
        FieldSpec("NGAY_VAO_NOI_TRU", DATETIME, 12, False),
        FieldSpec("NGAY_RA", DATETIME, 12, True),
        FieldSpec("GIAY_CHUYEN_TUYEN", TEXT, 50, False),
        FieldSpec("SO_NGAY_DTRI", INTEGER, 3, True),
        FieldSpec("PP_DIEU_TRI", TEXT, None, False),
        FieldSpec("KET_QUA_DTRI", INTEGER, 1, True),
        FieldSpec("MA_LOAI_RV", INTEGER, 1, True),
        FieldSpec("GHI_CHU", TEXT, None, False),
        FieldSpec("NGAY_TTOAN", DATETIME, 12, False),
        FieldSpec("T_THUOC", DECIMAL, 15, True, scale=2),
        FieldSpec("T_VTYT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_TONGCHI_BV", DECIMAL, 15, True, scale=2),
        FieldSpec("T_TONGCHI_BH", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BNTT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BNCCT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BHTT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BHTT_GDV", DECIMAL, 15, True, scale=2),
        FieldSpec("NAM_QT", INTEGER, 4, True),
        FieldSpec("THANG_QT", INTEGER, 2, True),
        FieldSpec("MA_LOAI_KCB", TEXT, 2, True),
        FieldSpec("MA_KHOA", TEXT, 50, True, multi=True),
        FieldSpec("MA_CSKCB", TEXT, 5, True),
        FieldSpec("MA_KHUVUC", TEXT, 2, False),
        FieldSpec("CAN_NANG", DECIMAL, 6, True, scale=2),
        FieldSpec("CAN_NANG_CON", TEXT, 100, False, multi=True),
        FieldSpec("NAM_NAM_LIEN_TUC", DATE, 8, False),
        FieldSpec("NGAY_TAI_KHAM", DATE, 50, False, multi=True),
        FieldSpec("MA_HSBA", TEXT, 100, True),
        FieldSpec("MA_TTDV", TEXT, 10, False),
        FieldSpec("DU_PHONG", TEXT, None, False),
    ),
    # XML2: schema section "## XML2", column "Effective (after 4750)".
    "XML2": (
        FieldSpec("MA_LK", TEXT, 100, True),
        FieldSpec("STT", INTEGER, 10, True),
        FieldSpec("MA_THUOC", TEXT, 255, True),
        FieldSpec("MA_PP_CHEBIEN", TEXT, 255, False),
        FieldSpec("MA_CSKCB_THUOC", TEXT, 10, False),
        FieldSpec("MA_NHOM", INTEGER, 2, True),
        FieldSpec("TEN_THUOC", TEXT, 1024, True),
        FieldSpec("DON_VI_TINH", TEXT, 50, True),
        FieldSpec("HAM_LUONG", TEXT, 1024, True),
        FieldSpec("DUONG_DUNG", TEXT, 4, True),
        FieldSpec("DANG_BAO_CHE", TEXT, 1024, False),
        FieldSpec("LIEU_DUNG", TEXT, 1024, True),
        FieldSpec("CACH_DUNG", TEXT, 1024, False),
        FieldSpec("SO_DANG_KY", TEXT, 255, False),
        FieldSpec("TT_THAU", TEXT, 50, False),
        FieldSpec("PHAM_VI", INTEGER, 1, True),
        FieldSpec("TYLE_TT_BH", INTEGER, 3, True),
        FieldSpec("SO_LUONG", DECIMAL, 10, True, scale=3),
        FieldSpec("DON_GIA", DECIMAL, 15, True, scale=3),
        FieldSpec("THANH_TIEN_BV", DECIMAL, 15, True, scale=2),
        FieldSpec("THANH_TIEN_BH", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_NSNN", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_VTNN", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_VTTN", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_CL", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC", DECIMAL, 15, True, scale=2),
        FieldSpec("MUC_HUONG", INTEGER, 3, True),
        FieldSpec("T_BNTT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BNCCT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BHTT", DECIMAL, 15, True, scale=2),
        FieldSpec("MA_KHOA", TEXT, 50, True, multi=True),
        FieldSpec("MA_BAC_SI", TEXT, 255, False, multi=True),
        FieldSpec("MA_DICH_VU", TEXT, 255, False),
        FieldSpec("NGAY_YL", DATETIME, 12, True),
        FieldSpec("NGAY_TH_YL", DATETIME, 12, False),
        FieldSpec("MA_PTTT", INTEGER, 1, True),
        FieldSpec("NGUON_CTRA", INTEGER, 1, True),
        FieldSpec("VET_THUONG_TP", INTEGER, 1, False),
        FieldSpec("DU_PHONG", TEXT, None, False),
    ),
    # XML3: schema section "## XML3", column "Effective (after 4750)".
    "XML3": (
        FieldSpec("MA_LK", TEXT, 100, True),
        FieldSpec("STT", INTEGER, 10, True),
        FieldSpec("MA_DICH_VU", TEXT, 50, False),
        FieldSpec("MA_PTTT_QT", TEXT, 255, False, multi=True),
        FieldSpec("MA_VAT_TU", TEXT, 255, False),
        FieldSpec("MA_NHOM", INTEGER, 2, True),
        FieldSpec("GOI_VTYT", TEXT, 3, False),
        FieldSpec("TEN_VAT_TU", TEXT, 1024, False),
        FieldSpec("TEN_DICH_VU", TEXT, 1024, False),
        FieldSpec("MA_XANG_DAU", TEXT, 20, False),
        FieldSpec("DON_VI_TINH", TEXT, 50, True),
        FieldSpec("PHAM_VI", INTEGER, 1, True),
        FieldSpec("SO_LUONG", DECIMAL, 10, True, scale=3),
        FieldSpec("DON_GIA_BV", DECIMAL, 15, True, scale=3),
        FieldSpec("DON_GIA_BH", DECIMAL, 15, True, scale=3),
        FieldSpec("TT_THAU", TEXT, 50, False),
        FieldSpec("TYLE_TT_DV", INTEGER, 3, True),
        FieldSpec("TYLE_TT_BH", INTEGER, 3, True),
        FieldSpec("THANH_TIEN_BV", DECIMAL, 15, True, scale=2),
        FieldSpec("THANH_TIEN_BH", DECIMAL, 15, True, scale=2),
        FieldSpec("T_TRANTT", DECIMAL, 15, False, scale=2),
        FieldSpec("MUC_HUONG", INTEGER, 3, True),
        FieldSpec("T_NGUONKHAC_NSNN", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_VTNN", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_VTTN", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC_CL", DECIMAL, 15, True, scale=2),
        FieldSpec("T_NGUONKHAC", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BNTT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BNCCT", DECIMAL, 15, True, scale=2),
        FieldSpec("T_BHTT", DECIMAL, 15, True, scale=2),
        FieldSpec("MA_KHOA", TEXT, 50, True, multi=True),
        FieldSpec("MA_GIUONG", TEXT, 50, False, multi=True),
        FieldSpec("MA_BAC_SI", TEXT, 255, True, multi=True),
        FieldSpec("NGUOI_THUC_HIEN", TEXT, 255, False),
        FieldSpec("MA_BENH", TEXT, 100, True),
        FieldSpec("MA_BENH_YHCT", TEXT, 255, False),
        FieldSpec("NGAY_YL", DATETIME, 12, True),
        FieldSpec("NGAY_TH_YL", DATETIME, 12, False),
        FieldSpec("NGAY_KQ", DATETIME, 12, False),
        FieldSpec("MA_PTTT", INTEGER, 1, True),
        FieldSpec("VET_THUONG_TP", INTEGER, 1, False),
        FieldSpec("PP_VO_CAM", INTEGER, 1, False),
        FieldSpec("VI_TRI_TH_DVKT", INTEGER, 3, False),
        FieldSpec("MA_MAY", TEXT, 1024, False),
        FieldSpec("MA_HIEU_SP", TEXT, 255, False),
        FieldSpec("TAI_SU_DUNG", INTEGER, 1, False),
        FieldSpec("DU_PHONG", TEXT, None, False),
    ),
    # XML4: schema section "## XML4", column "Effective (after 4750)".
    "XML4": (
        FieldSpec("MA_LK", TEXT, 100, True),
        FieldSpec("STT", INTEGER, 10, True),
        FieldSpec("MA_DICH_VU", TEXT, 15, False),
        FieldSpec("MA_CHI_SO", TEXT, 50, False),
        FieldSpec("TEN_CHI_SO", TEXT, 255, True),
        FieldSpec("GIA_TRI", TEXT, 50, False),
        FieldSpec("DON_VI_DO", TEXT, 50, False),
        FieldSpec("MO_TA", TEXT, None, False),
        FieldSpec("KET_LUAN", TEXT, None, False),
        FieldSpec("NGAY_KQ", DATETIME, 12, False),
        FieldSpec("MA_BS_DOC_KQ", TEXT, 255, False),
        FieldSpec("DU_PHONG", TEXT, None, False),
    ),
    # XML5: schema section "## XML5", column "Effective (after 4750)".
    "XML5": (
        FieldSpec("MA_LK", TEXT, 100, True),
        FieldSpec("STT", INTEGER, 10, True),
        FieldSpec("DIEN_BIEN_LS", TEXT, None, True),
        FieldSpec("GIAI_DOAN_BENH", TEXT, None, False),
        FieldSpec("HOI_CHAN", TEXT, None, False),
        FieldSpec("PHAU_THUAT", TEXT, None, False),
        FieldSpec("THOI_DIEM_DBLS", DATETIME, 12, True),
        FieldSpec("NGUOI_THUC_HIEN", TEXT, 255, True),
        FieldSpec("DU_PHONG", TEXT, None, False),
    ),
}
