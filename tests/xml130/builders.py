"""Small claims XML documents made in the tests: tables, envelopes, with base64 inside as the standard has it."""

from __future__ import annotations

import base64

from ketnoi.xml130.writer import DECLARATION, LISTS, table_xml

# The writer makes well-formed documents; these helpers also let a test break a HOSO or an envelope on purpose.
__all__ = ["DECLARATION", "LISTS", "drug", "envelope", "file_entry", "hoso", "table_xml", "xml1"]


def file_entry(kind: str, payload: bytes | str) -> str:
    text = payload if isinstance(payload, str) else base64.b64encode(payload).decode("ascii")
    return f"<FILEHOSO><LOAIHOSO>{kind}</LOAIHOSO><NOIDUNGFILE>{text}</NOIDUNGFILE></FILEHOSO>"


def hoso(tables: dict[str, list[dict[str, str]]]) -> str:
    return "<HOSO>" + "".join(file_entry(name, table_xml(name, rows)) for name, rows in tables.items()) + "</HOSO>"


def envelope(hosos: list[str], facility: str = "79001", prolog: str = DECLARATION) -> bytes:
    """A GIAMDINHHS envelope around ready-made HOSO elements (strings, so a test can break one on purpose)."""
    return (
        f'{prolog}<GIAMDINHHS xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<THONGTINDONVI><MACSKCB>{facility}</MACSKCB></THONGTINDONVI>"
        f"<THONGTINHOSO><NGAYLAP>202401200800</NGAYLAP><SOLUONGHOSO>{len(hosos)}</SOLUONGHOSO>"
        f"<DANHSACHHOSO>{''.join(hosos)}</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI/></GIAMDINHHS>"
    ).encode()


def xml1(ma_lk: str, **overrides: str) -> dict[str, str]:
    """An XML1 row with every mandatory field filled (schema "## XML1", Req. = x)."""
    row = {
        "MA_LK": ma_lk,
        "STT": "1",
        "MA_BN": "BN" + ma_lk,
        "HO_TEN": "Nguyễn Văn An",
        "NGAY_SINH": "198005150000",
        "GIOI_TINH": "1",
        "MA_QUOCTICH": "000",
        "MA_DANTOC": "01",
        "MA_NGHE_NGHIEP": "00000",
        "DIA_CHI": "12 Lê Lợi, Quận 1, TP Hồ Chí Minh",
        "MATINH_CU_TRU": "79",
        "MAHUYEN_CU_TRU": "760",
        "MAXA_CU_TRU": "26734",
        "MA_THE_BHYT": "DN4797912345678",
        "LY_DO_VV": "Sốt",
        "CHAN_DOAN_VAO": "Sốt chưa rõ nguyên nhân",
        "CHAN_DOAN_RV": "Viêm họng cấp",
        "MA_BENH_CHINH": "J02.9",
        "MA_DOITUONG_KCB": "1.1",
        "NGAY_VAO": "202401150930",
        "NGAY_RA": "202401151100",
        "SO_NGAY_DTRI": "0",
        "KET_QUA_DTRI": "1",
        "MA_LOAI_RV": "1",
        "T_THUOC": "123456.78",
        "T_VTYT": "0",
        "T_TONGCHI_BV": "123456.78",
        "T_TONGCHI_BH": "123456.78",
        "T_BNTT": "0",
        "T_BNCCT": "24691.36",
        "T_BHTT": "98765.42",
        "T_NGUONKHAC": "0",
        "T_BHTT_GDV": "98765.42",
        "NAM_QT": "2024",
        "THANG_QT": "1",
        "MA_LOAI_KCB": "01",
        "MA_KHOA": "K01",
        "MA_CSKCB": "79001",
        "CAN_NANG": "62.50",
        "MA_HSBA": "HS" + ma_lk,
    }
    return {**row, **overrides}


def drug(ma_lk: str, stt: int, **overrides: str) -> dict[str, str]:
    """An XML2 row (drug line)."""
    row = {
        "MA_LK": ma_lk,
        "STT": str(stt),
        "MA_THUOC": "40.17",
        "MA_NHOM": "4",
        "TEN_THUOC": "Paracetamol",
        "DON_VI_TINH": "viên",
        "HAM_LUONG": "500mg",
        "DUONG_DUNG": "1.01",
        "LIEU_DUNG": "1 viên/lần * 2 lần/ngày * 3 ngày",
        "PHAM_VI": "1",
        "TYLE_TT_BH": "100",
        "SO_LUONG": "6",
        "DON_GIA": "20576.13",
        "THANH_TIEN_BV": "123456.78",
        "THANH_TIEN_BH": "123456.78",
        "T_NGUONKHAC_NSNN": "0",
        "T_NGUONKHAC_VTNN": "0",
        "T_NGUONKHAC_VTTN": "0",
        "T_NGUONKHAC_CL": "0",
        "T_NGUONKHAC": "0",
        "MUC_HUONG": "80",
        "T_BNTT": "0",
        "T_BNCCT": "24691.36",
        "T_BHTT": "98765.42",
        "MA_KHOA": "K01",
        "NGAY_YL": "202401150945",
        "MA_PTTT": "1",
        "NGUON_CTRA": "1",
    }
    return {**row, **overrides}
