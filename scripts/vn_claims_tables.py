"""The code lists of the claims XML (QĐ 130/QĐ-BYT as amended by QĐ 4750/QĐ-BYT) that
scripts/build_vn_terminology.py turns into CodeSystems: data only, with where each wording comes
from (docs/vn-code-systems.md)."""

from __future__ import annotations

from typing import NamedTuple


class ClaimsTable(NamedTuple):
    field: str  # the field the CodeSystem is named after
    title: str
    where: str  # the fields using the list, by table and item number of the appendix
    concepts: tuple[tuple[str, str, str], ...]  # code, display, definition ("" = none)
    wording: str  # where the Vietnamese wording comes from
    fragment: str = ""  # why the list is partial ("" = complete)


SCHEMA = "tài liệu shared/vn/xml130_schema.md (bản chép phụ lục QĐ 4750)"  # see docs/vn-code-systems.md
VENDOR = "bản chép phụ lục QĐ 4750 của DH (dh-hos/Mo-ta-he-thong, XML130/QD4570, bảng XML1/XML2)"
TRUNCATED = f"danh sách trong {SCHEMA} bị cắt ở 110 ký tự; chỉ giữ các mã có tên đầy đủ trước chỗ cắt"

CLAIMS_TABLES: tuple[ClaimsTable, ...] = (
    ClaimsTable(
        "MA_LOAI_KCB",
        "Mã hình thức khám bệnh, chữa bệnh (MA_LOAI_KCB)",
        "XML0 chỉ tiêu 17, XML1 chỉ tiêu 55, XML8 chỉ tiêu 2",
        (
            ("01", "Khám bệnh", ""),
            ("02", "Điều trị ngoại trú", ""),
            ("03", "Điều trị nội trú", ""),
            ("04", "Điều trị nội trú ban ngày", ""),
            (
                "05",
                "Điều trị ngoại trú các bệnh mạn tính dài ngày liên tục trong năm, có khám bệnh và lĩnh thuốc",
                "Áp dụng cho các bệnh theo danh mục ban hành kèm theo Thông tư 46/2016/TT-BYT.",
            ),
            ("06", "Điều trị lưu tại Trạm Y tế tuyến xã, Phòng khám đa khoa khu vực", ""),
            ("07", "Nhận thuốc theo hẹn (không khám bệnh)", ""),
            (
                "08",
                "Điều trị ngoại trú các bệnh mạn tính dài ngày liên tục trong năm, có khám bệnh, có thực hiện "
                "các dịch vụ kỹ thuật và/hoặc được sử dụng thuốc",
                "Áp dụng cho các bệnh theo danh mục ban hành kèm theo Thông tư 46/2016/TT-BYT.",
            ),
            ("09", "Điều trị nội trú dưới 4 giờ", ""),
        ),
        "tên theo lời văn của QĐ 4750 khi nói đến từng mã (Bảng XML1 chỉ tiêu 36 NGAY_RA, 38 SO_NGAY_DTRI; "
        f"ghi chú Bảng XML5, XML8) trong {SCHEMA} và {VENDOR}; mã 09 = điều trị nội trú dưới 4 giờ theo {VENDOR}",
        "mã 01-09 của Phụ lục 1 Quyết định 824/QĐ-BYT (15/02/2023); QĐ 1804/QĐ-BYT (19/06/2026, áp dụng từ "
        "01/08/2026) mở rộng lên 16 mã (14 = khám bệnh, chữa bệnh từ xa) — danh sách đó không có trong nguồn",
    ),
    ClaimsTable(
        "MA_DOITUONG_KCB",
        "Mã đối tượng đến khám bệnh, chữa bệnh (MA_DOITUONG_KCB)",
        "XML0 chỉ tiêu 12, XML1 chỉ tiêu 30, XML14 chỉ tiêu 19",
        (
            (
                "1.1",
                "Đúng tuyến: khám bệnh, chữa bệnh tại cơ sở đăng ký khám bệnh, chữa bệnh ban đầu",
                "Khoản 1 Điều 6 Thông tư 30/2020/TT-BYT.",
            ),
            (
                "1.2",
                "Đúng tuyến: đăng ký ban đầu ở tuyến xã hoặc huyện, khám bệnh, chữa bệnh tại cơ sở tuyến xã hoặc "
                "huyện khác trong cùng tỉnh",
                "Khoản 2 Điều 6 Thông tư 30/2020/TT-BYT.",
            ),
            ("1.3", "Đúng tuyến: được chuyển tuyến theo quy định", "Điểm a, b khoản 4 Điều 6 Thông tư 30/2020/TT-BYT."),
            (
                "1.4",
                "Đúng tuyến: có giấy tờ chứng minh đang ở địa phương khác (công tác, làm việc lưu động, học tập, "
                "tạm trú)",
                "Khoản 5 Điều 6 Thông tư 30/2020/TT-BYT.",
            ),
            (
                "1.5",
                "Đúng tuyến: khám lại theo giấy hẹn sau khi đã được chuyển tuyến",
                "Khoản 6 Điều 6 Thông tư 30/2020/TT-BYT.",
            ),
            (
                "1.7",
                "Đúng tuyến: trẻ sơ sinh phải điều trị ngay sau khi sinh",
                "Khoản 8 Điều 6 Thông tư 30/2020/TT-BYT.",
            ),
            (
                "1.8",
                "Đúng tuyến: người mắc bệnh lao được chuyển tuyến theo quy định",
                "Khoản 2 Điều 6 Thông tư 04/2016/TT-BYT.",
            ),
            ("1.9", "Đúng tuyến: người mắc bệnh HIV/AIDS", ""),
            ("1.10", "Đúng tuyến: người mắc bệnh COVID-19", ""),
            ("2", "Cấp cứu", ""),
            (
                "3.2",
                "Trái tuyến: tự đi điều trị nội trú tại bệnh viện tuyến tỉnh",
                "Điểm b khoản 3 và khoản 6 Điều 22 Luật Bảo hiểm y tế.",
            ),
            (
                "3.3",
                "Trái tuyến: tự đi khám bệnh, chữa bệnh tại bệnh viện tuyến huyện",
                "Điểm c khoản 3 Điều 22 Luật Bảo hiểm y tế.",
            ),
            (
                "3.5",
                "Trái tuyến: tự đi khám bệnh, chữa bệnh ngoại trú tại cơ sở tuyến tỉnh",
                "Quỹ bảo hiểm y tế không thanh toán (khoản 1 Điều 22 Luật Bảo hiểm y tế).",
            ),
            (
                "3.6",
                "Trái tuyến: người dân tộc thiểu số, người thuộc hộ nghèo ở vùng khó khăn hoặc người sống ở xã "
                "đảo, huyện đảo tự đi khám bệnh, chữa bệnh",
                "Khoản 5 Điều 22 Luật Bảo hiểm y tế.",
            ),
            ("7.1", "Lĩnh thuốc theo giấy hẹn", ""),
        ),
        f"mã 2 = cấp cứu theo {SCHEMA} (mục 1); các tên khác là lời tóm tắt của ketnoi theo quy định pháp luật "
        f"mà {VENDOR} (tệp ma_doituong_kcb.md) gắn với từng mã — không phải lời văn chính thức",
        "danh mục chính thức (Bộ mã DMDC: QĐ 824/QĐ-BYT → QĐ 2010/QĐ-BYT năm 2025 → QĐ 3276/QĐ-BYT, 27 dòng) "
        "không có trong nguồn; các mã 1.6, 3.1, 3.4, 3.7, 7.2, 7.3, 7.4, 8, 9 có tồn tại nhưng nguồn không cho "
        "nghĩa. Các mã 'đúng tuyến/trái tuyến' thuộc Luật BHYT trước sửa đổi 51/2024/QH15",
    ),
    ClaimsTable(
        "KET_QUA_DTRI",
        "Mã kết quả điều trị (KET_QUA_DTRI)",
        "XML1 chỉ tiêu 40, XML8 chỉ tiêu 17",
        (
            ("1", "Khỏi", ""),
            ("2", "Đỡ", ""),
            ("3", "Không thay đổi", ""),
            ("4", "Nặng hơn", ""),
            ("5", "Tử vong", ""),
            ("6", "Tiên lượng nặng xin về", ""),
            ("7", "Chưa xác định", "Không thuộc một trong các mã kết quả điều trị nêu trên."),
            ("8", "Tử vong ngoại viện", "Mã bổ sung bởi QĐ 4750/QĐ-BYT."),
        ),
        f"mã 1-3 theo {SCHEMA} (XML8 chỉ tiêu 17), mã 4-8 theo {VENDOR}; nghĩa khớp bản tiếng Anh của {SCHEMA}",
    ),
    ClaimsTable(
        "MA_LOAI_RV",
        "Mã loại ra viện (MA_LOAI_RV)",
        "XML1 chỉ tiêu 41, XML13 chỉ tiêu 31",
        (
            ("1", "Ra viện", ""),
            ("2", "Chuyển tuyến theo yêu cầu chuyên môn", ""),
            ("3", "Trốn viện", ""),
            ("4", "Xin ra viện", ""),
            ("5", "Chuyển tuyến theo yêu cầu người bệnh", ""),
        ),
        f"lời văn theo {VENDOR}; nghĩa khớp bản tiếng Anh của {SCHEMA}",
    ),
    ClaimsTable(
        "GIOI_TINH",
        "Mã giới tính (GIOI_TINH, GIOI_TINH_CON)",
        "XML0 chỉ tiêu 7, XML1 chỉ tiêu 7, XML6 chỉ tiêu 5, XML13 chỉ tiêu 10, XML14 chỉ tiêu 6; GIOI_TINH_CON: "
        "XML9 chỉ tiêu 18",
        (("1", "Nam", ""), ("2", "Nữ", ""), ("3", "Chưa xác định", "")),
        f"{SCHEMA}, XML9 chỉ tiêu 18",
    ),
    ClaimsTable(
        "PHAM_VI",
        "Mã phạm vi hưởng BHYT của thuốc, dịch vụ (PHAM_VI)",
        "XML2 chỉ tiêu 16, XML3 chỉ tiêu 12",
        (
            ("1", "Trong phạm vi hưởng BHYT", "Trong danh mục do quỹ BHYT chi trả."),
            ("2", "Ngoài phạm vi hưởng BHYT", "Ngoài danh mục do quỹ BHYT chi trả."),
            (
                "3",
                "Ngoài danh mục nhưng được quỹ BHYT chi trả cho quân đội, công an, cơ yếu",
                "Ngoài danh mục do quỹ BHYT chi trả nhưng được quỹ BHYT chi trả cho các đối tượng thuộc quân đội, "
                "công an, cơ yếu theo Nghị định 70/2015/NĐ-CP.",
            ),
        ),
        f"{VENDOR} (XML2 chỉ tiêu 16, nói về thuốc; dùng chung cho XML3)",
    ),
    ClaimsTable(
        "MA_PTTT",
        "Mã phương thức thanh toán (MA_PTTT)",
        "XML2 chỉ tiêu 35, XML3 chỉ tiêu 40",
        (
            ("1", "Phí dịch vụ", "Thanh toán theo phí dịch vụ."),
            ("2", "Định suất", "Thanh toán theo định suất."),
            ("3", "Trường hợp bệnh (DRG)", "Thanh toán theo trường hợp bệnh (DRG)."),
        ),
        f"{VENDOR} (XML2 chỉ tiêu 35)",
    ),
    ClaimsTable(
        "NGUON_CTRA",
        "Mã nguồn chi trả thuốc (NGUON_CTRA)",
        "XML2 chỉ tiêu 36",
        (
            ("1", "Quỹ BHYT chi trả", ""),
            ("2", "Thuốc của dự án hoặc viện trợ", ""),
            ("3", "Thuốc thuộc chương trình mục tiêu quốc gia", ""),
            ("4", "Các nguồn khác chi trả", ""),
        ),
        f"{VENDOR} (XML2 chỉ tiêu 36)",
    ),
    ClaimsTable(
        "PP_VO_CAM",
        "Mã phương pháp vô cảm (PP_VO_CAM)",
        "XML3 chỉ tiêu 42",
        (("1", "Gây mê", ""), ("2", "Gây tê", ""), ("3", "Châm tê", ""), ("4", "Các phương pháp vô cảm khác", "")),
        "hướng dẫn triển khai QĐ 4750 của DH (dh-hos), trích nguyên văn; nghĩa khớp bản tiếng Anh của " + SCHEMA,
    ),
    ClaimsTable(
        "MA_DINH_CHI_THAI",
        "Mã đình chỉ thai nghén (MA_DINH_CHI_THAI)",
        "XML7 chỉ tiêu 7, XML11 chỉ tiêu 10",
        (("0", "Không đình chỉ thai nghén", ""), ("1", "Đình chỉ thai nghén", "")),
        f"{SCHEMA}, XML7 chỉ tiêu 7",
    ),
    ClaimsTable(
        "SINHCON_PHAUTHUAT",
        "Mã sinh con phải phẫu thuật (SINHCON_PHAUTHUAT)",
        "XML9 chỉ tiêu 26",
        (("0", "Sinh con không phải phẫu thuật", ""), ("1", "Sinh con phải phẫu thuật", "")),
        f"{SCHEMA}, XML9 chỉ tiêu 26",
    ),
    ClaimsTable(
        "SINHCON_DUOI32TUAN",
        "Mã sinh con dưới 32 tuần tuổi (SINHCON_DUOI32TUAN)",
        "XML9 chỉ tiêu 27",
        (("0", "Không sinh con dưới 32 tuần tuổi", ""), ("1", "Sinh con dưới 32 tuần tuổi", "")),
        f"{SCHEMA}, XML9 chỉ tiêu 27",
    ),
    ClaimsTable(
        "CHUC_VU",
        "Mã chức vụ của người chủ trì hội đồng giám định y khoa (CHUC_VU)",
        "XML12 chỉ tiêu 2",
        (("1", "Chủ tịch", ""), ("2", "Người ký thay chủ tịch", "")),
        f"{SCHEMA}, XML12 chỉ tiêu 2",
    ),
    ClaimsTable(
        "MA_KQ_XN_PCR",
        "Mã kết quả xét nghiệm PCR (MA_KQ_XN_PCR)",
        "XML6 chỉ tiêu 35",
        (("0", "Âm tính", ""), ("1", "Dương tính", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 35",
    ),
    ClaimsTable(
        "LOAI_DTRI_LAO",
        "Mã loại điều trị lao (LOAI_DTRI_LAO)",
        "XML6 chỉ tiêu 18, XML15 chỉ tiêu 11",
        (("0", "Không điều trị lao", ""), ("1", "Điều trị lao tiềm ẩn", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 18",
        TRUNCATED,
    ),
    ClaimsTable(
        "SANG_LOC_LAO",
        "Mã phương pháp sàng lọc lao (SANG_LOC_LAO)",
        "XML6 chỉ tiêu 19",
        (("1", "Không sàng lọc", ""),),
        f"{SCHEMA}, XML6 chỉ tiêu 19",
        TRUNCATED,
    ),
    ClaimsTable(
        "KQ_DTRI_LAO",
        "Mã kết quả điều trị lao, lao tiềm ẩn ở người nhiễm HIV (KQ_DTRI_LAO)",
        "XML6 chỉ tiêu 23",
        (("1", "Đang điều trị", ""), ("2", "Hoàn thành", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 23",
        TRUNCATED,
    ),
    ClaimsTable(
        "MA_LOAI_BN",
        "Mã đối tượng đến khám HIV/AIDS (MA_LOAI_BN)",
        "XML6 chỉ tiêu 28",
        (("1", "Người nhiễm HIV", ""), ("2", "Trẻ phơi nhiễm với HIV", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 28",
        TRUNCATED,
    ),
    ClaimsTable(
        "GIAI_DOAN_LAM_SANG",
        "Mã giai đoạn lâm sàng HIV (GIAI_DOAN_LAM_SANG)",
        "XML6 chỉ tiêu 29",
        (("1", "Giai đoạn I", ""), ("2", "Giai đoạn II", ""), ("3", "Giai đoạn III", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 29",
        TRUNCATED,
    ),
    ClaimsTable(
        "NHOM_DOI_TUONG",
        "Mã nhóm đối tượng HIV/AIDS (NHOM_DOI_TUONG)",
        "XML6 chỉ tiêu 30",
        (("0", "Người sử dụng ma tuý", ""), ("1", "Người bán dâm", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 30",
        TRUNCATED,
    ),
    ClaimsTable(
        "MA_TINH_TRANG_DK",
        "Mã tình trạng của đối tượng đến khám HIV/AIDS (MA_TINH_TRANG_DK)",
        "XML6 chỉ tiêu 31",
        (("1", "Trẻ dưới 18 tháng sinh ra từ mẹ nhiễm HIV", ""),),
        f"{SCHEMA}, XML6 chỉ tiêu 31",
        TRUNCATED,
    ),
    ClaimsTable(
        "LAN_XN_PCR",
        "Mã lần thực hiện xét nghiệm PCR (LAN_XN_PCR)",
        "XML6 chỉ tiêu 32",
        (("1", "Lần 1", ""), ("2", "Lần 2", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 32",
        TRUNCATED,
    ),
    ClaimsTable(
        "MA_XU_TRI",
        "Mã xử trí của cơ sở y tế với người nhiễm HIV (MA_XU_TRI)",
        "XML6 chỉ tiêu 38",
        (("1", "Điều trị ARV", ""), ("2", "Điều trị lao", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 38",
        TRUNCATED,
    ),
    ClaimsTable(
        "MA_BAC_PHAC_DO",
        "Mã bậc phác đồ điều trị HIV/AIDS khi phác đồ là 'Khác' (MA_BAC_PHAC_DO, MA_BAC_PHAC_DO_BD)",
        "XML6 chỉ tiêu 42; MA_BAC_PHAC_DO_BD: XML6 chỉ tiêu 16",
        (("1", "Phác đồ bậc 1", ""),),
        f"{SCHEMA}, XML6 chỉ tiêu 42",
        TRUNCATED,
    ),
    ClaimsTable(
        "LY_DO_CHUYEN_PHAC_DO",
        "Mã lý do chuyển phác đồ điều trị HIV/AIDS (LY_DO_CHUYEN_PHAC_DO)",
        "XML6 chỉ tiêu 45",
        (("1", "Thiếu thuốc", ""), ("2", "Tác dụng phụ", "")),
        f"{SCHEMA}, XML6 chỉ tiêu 45",
        TRUNCATED,
    ),
    ClaimsTable(
        "MA_DOI_TUONG",
        "Mã đối tượng giám định y khoa (MA_DOI_TUONG)",
        "XML12 chỉ tiêu 17",
        (("BB", "Bệnh binh", ""), ("BHXH1L", "Hưởng BHXH 1 lần", ""), ("BNN", "Bệnh nghề nghiệp", "")),
        f"{SCHEMA}, XML12 chỉ tiêu 17",
        TRUNCATED,
    ),
    ClaimsTable(
        "KHAM_GIAM_DINH",
        "Mã khám giám định y khoa (KHAM_GIAM_DINH)",
        "XML12 chỉ tiêu 18",
        (("1", "Khám giám định lần đầu", ""), ("2", "Khám giám định lại", "")),
        f"{SCHEMA}, XML12 chỉ tiêu 18",
        TRUNCATED,
    ),
    ClaimsTable(
        "DANG_HUONG_CHE_DO",
        "Mã chế độ đang hưởng (DANG_HUONG_CHE_DO)",
        "XML12 chỉ tiêu 21",
        (("1", "Thương binh", ""), ("2", "Bệnh, tật", ""), ("3", "Bệnh nghề nghiệp", "")),
        f"{SCHEMA}, XML12 chỉ tiêu 21",
        TRUNCATED,
    ),
    ClaimsTable(
        "PHANLOAI_LAO_VITRI",
        "Mã phân loại bệnh nhân lao theo vị trí giải phẫu (PHANLOAI_LAO_VITRI)",
        "XML15 chỉ tiêu 6",
        (("1", "Lao phổi", ""), ("2", "Lao ngoài phổi", "")),
        f"{SCHEMA}, XML15 chỉ tiêu 6",
        TRUNCATED + " (có thể đã đủ: đoạn văn dừng đúng ở độ dài bị cắt)",
    ),
    ClaimsTable(
        "PHANLOAI_LAO_TS",
        "Mã phân loại bệnh nhân lao theo tiền sử điều trị (PHANLOAI_LAO_TS)",
        "XML15 chỉ tiêu 7",
        (("1", "Lao mới", ""), ("2", "Tái phát", "")),
        f"{SCHEMA}, XML15 chỉ tiêu 7",
        TRUNCATED,
    ),
    ClaimsTable(
        "PHANLOAI_LAO_HIV",
        "Mã phân loại bệnh nhân lao theo tình trạng nhiễm HIV (PHANLOAI_LAO_HIV)",
        "XML15 chỉ tiêu 8",
        (("1", "Lao/HIV (+)", ""), ("2", "Lao/HIV (-)", "")),
        f"{SCHEMA}, XML15 chỉ tiêu 8",
        TRUNCATED + " (có thể đã đủ: đoạn văn dừng đúng ở độ dài bị cắt)",
    ),
    ClaimsTable(
        "PHANLOAI_LAO_VK",
        "Mã phân loại bệnh nhân lao theo bằng chứng vi khuẩn học (PHANLOAI_LAO_VK)",
        "XML15 chỉ tiêu 9",
        (("1", "Lao có bằng chứng vi khuẩn học", ""),),
        f"{SCHEMA}, XML15 chỉ tiêu 9",
        TRUNCATED,
    ),
    ClaimsTable(
        "PHANLOAI_LAO_KT",
        "Mã phân loại bệnh nhân lao theo tình trạng kháng thuốc (PHANLOAI_LAO_KT)",
        "XML15 chỉ tiêu 10",
        (("1", "Lao kháng đơn thuốc", ""),),
        f"{SCHEMA}, XML15 chỉ tiêu 10",
        TRUNCATED,
    ),
    ClaimsTable(
        "KET_QUA_DTRI_LAO",
        "Mã đánh giá kết quả điều trị lao (KET_QUA_DTRI_LAO)",
        "XML15 chỉ tiêu 15",
        (("1", "Khỏi", ""),),
        f"{SCHEMA}, XML15 chỉ tiêu 15 (định nghĩa của mã 1 bị cắt, chỉ giữ tên)",
        TRUNCATED,
    ),
)
