"""Every string of the console, in Vietnamese and English (ADR 0026 decision 5).

A template asks ``t("key")``; a key missing in either language fails ``tests/console/test_i18n.py``.
"""

from __future__ import annotations

from typing import Final

from ketnoi.console import (
    text_account,
    text_audit,
    text_clinical,
    text_dashboard,
    text_imports,
    text_ops,
    text_portal,
    text_registry,
    text_review,
)

LANGUAGES: Final = ("vi", "en")

TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "app": "ketnoi — bảng điều khiển y tế",
        "skip": "Bỏ qua, đến nội dung chính",
        "nav": "Điều hướng chính",
        "home": "Trang chủ",
        "patients": "Bệnh nhân",
        "sign_out": "Đăng xuất",
        "sign_in": "Đăng nhập",
        "signed_in_as": "Đang đăng nhập:",
        "switch_lang": "English",
        "switch_lang_label": "Switch to English",
        "welcome": "Xin chào",
        "home_intro": "Tra cứu bệnh nhân theo tên (có hoặc không dấu), số CCCD, số thẻ BHYT hoặc năm sinh.",
        "search_label": "Tên, CCCD, số thẻ BHYT hoặc năm sinh",
        "search_button": "Tìm",
        "search_hint": "Ví dụ: nguyen van an 1980, 001080012345, DN4010123456789",
        "results": "Kết quả",
        "no_results": "Không tìm thấy bệnh nhân nào mà bạn được phép xem.",
        "more_results": "Còn nhiều kết quả hơn; hãy thu hẹp tìm kiếm.",
        "name": "Họ tên",
        "birth_date": "Ngày sinh",
        "gender": "Giới tính",
        "identifiers": "Định danh",
        "address": "Địa chỉ",
        "managing_org": "Cơ sở quản lý",
        "male": "Nam",
        "female": "Nữ",
        "other": "Khác",
        "unknown": "Không rõ",
        "summary": "Tóm tắt",
        "coverage": "Bảo hiểm y tế",
        "allergies": "Dị ứng",
        "problems": "Bệnh đang điều trị",
        "medications": "Thuốc đang dùng",
        "encounters": "Các lần khám",
        "observations": "Chỉ số và xét nghiệm gần đây",
        "none_recorded": "Không có dữ liệu (hoặc bạn không được phép xem).",
        "date": "Ngày",
        "type": "Loại",
        "status": "Trạng thái",
        "facility": "Cơ sở",
        "value": "Giá trị",
        "code": "Mã",
        "period": "Hiệu lực",
        "not_found": "Không tìm thấy, hoặc bạn không được phép xem.",
        "error_title": "Có lỗi",
        "session_expired": "Phiên làm việc đã hết hạn; hãy đăng nhập lại.",
        "signed_out": "Bạn đã đăng xuất.",
        "sign_in_again": "Đăng nhập lại",
        "sign_in_failed": "Đăng nhập không thành công",
        "sign_in_cancelled": "Bạn đã từ chối cấp quyền cho bảng điều khiển.",
        "back_home": "Về trang chủ",
        "open_access": "Máy chủ đang chạy không cần đăng nhập (--auth off): mọi người đều xem được.",
        "forbidden_origin": "Biểu mẫu này không gửi từ trang của ketnoi nên không được chấp nhận.",
        "cancel": "Huỷ",
        "class_AMB": "Khám ngoại trú",
        "class_IMP": "Nội trú",
        "class_EMER": "Cấp cứu",
        "class_HH": "Khám tại nhà",
        "class_VR": "Khám từ xa",
        "class_OBSENC": "Theo dõi",
        "trends": "Diễn biến các chỉ số",
        "reference_range": "khoảng tham chiếu",
        "glass_opened": "hồ sơ đang mở cho riêng bạn, đã ghi vào nhật ký truy cập (bệnh nhân xem được), đến",
        "glass_offer": "Nếu đang cấp cứu bệnh nhân này, bạn có thể mở hồ sơ khẩn cấp, có nêu lý do.",
        "glass_open": "Mở hồ sơ khẩn cấp",
        "glass_title": "Mở hồ sơ khẩn cấp (phá kính)",
        "glass_explain": (
            "Hồ sơ sẽ mở cho riêng bạn trong thời gian giới hạn, kể cả khi bệnh nhân đã từ chối chia sẻ. "
            "Lý do được ghi vào nhật ký truy cập; bệnh nhân và quản trị viên đều xem được."
        ),
        "glass_patient": "Bệnh nhân",
        "glass_reason": "Lý do (bắt buộc)",
        "glass_reason_hint": "Ví dụ: bệnh nhân hôn mê nhập viện cấp cứu, cần tiền sử dị ứng thuốc.",
        "glass_submit": "Mở hồ sơ",
        "encounter_planned": "Đã hẹn",
        "encounter_arrived": "Đã đến",
        "encounter_triaged": "Đã phân loại",
        "encounter_in-progress": "Đang khám",
        "encounter_onleave": "Tạm vắng",
        "encounter_finished": "Đã xong",
        "encounter_cancelled": "Đã huỷ",
        "encounter_entered-in-error": "Nhập nhầm",
        "encounter_unknown": "Không rõ",
    },
    "en": {
        "app": "ketnoi — health console",
        "skip": "Skip to main content",
        "nav": "Main navigation",
        "home": "Home",
        "patients": "Patients",
        "sign_out": "Sign out",
        "sign_in": "Sign in",
        "signed_in_as": "Signed in as",
        "switch_lang": "Tiếng Việt",
        "switch_lang_label": "Chuyển sang tiếng Việt",
        "welcome": "Welcome",
        "home_intro": "Find a patient by name (with or without diacritics), CCCD number, health insurance "
        "(BHYT) card number or birth year.",
        "search_label": "Name, CCCD, BHYT card number or birth year",
        "search_button": "Search",
        "search_hint": "For example: nguyen van an 1980, 001080012345, DN4010123456789",
        "results": "Results",
        "no_results": "No patient found that you may see.",
        "more_results": "There are more results; narrow the search.",
        "name": "Name",
        "birth_date": "Date of birth",
        "gender": "Gender",
        "identifiers": "Identifiers",
        "address": "Address",
        "managing_org": "Managing facility",
        "male": "Male",
        "female": "Female",
        "other": "Other",
        "unknown": "Unknown",
        "summary": "Summary",
        "coverage": "Health insurance",
        "allergies": "Allergies",
        "problems": "Active problems",
        "medications": "Current medications",
        "encounters": "Encounters",
        "observations": "Recent observations and results",
        "none_recorded": "Nothing recorded (or nothing you may see).",
        "date": "Date",
        "type": "Type",
        "status": "Status",
        "facility": "Facility",
        "value": "Value",
        "code": "Code",
        "period": "Valid",
        "not_found": "Not found, or you may not see it.",
        "error_title": "Something went wrong",
        "session_expired": "Your session has expired; sign in again.",
        "signed_out": "You are signed out.",
        "sign_in_again": "Sign in again",
        "sign_in_failed": "Sign-in failed",
        "sign_in_cancelled": "You declined to give the console access.",
        "back_home": "Back to the home page",
        "open_access": "This server runs without sign-in (--auth off): anyone can see everything.",
        "forbidden_origin": "This form was not sent from a ketnoi page, so it was not accepted.",
        "cancel": "Cancel",
        "class_AMB": "Outpatient visit",
        "class_IMP": "Inpatient stay",
        "class_EMER": "Emergency",
        "class_HH": "Home visit",
        "class_VR": "Remote consultation",
        "class_OBSENC": "Observation",
        "trends": "Trends",
        "reference_range": "reference range",
        "glass_opened": "the record is open to you alone, recorded in the access log (the patient sees it), until",
        "glass_offer": "If you are treating this patient in an emergency, you may open the record, stating why.",
        "glass_open": "Open the record in an emergency",
        "glass_title": "Emergency access (break-the-glass)",
        "glass_explain": (
            "The record opens to you alone for a limited time, even if the patient refused to share it. "
            "The reason is recorded in the access log, which the patient and the administrators see."
        ),
        "glass_patient": "Patient",
        "glass_reason": "Reason (required)",
        "glass_reason_hint": "For example: unconscious patient admitted to the emergency room, drug allergies needed.",
        "glass_submit": "Open the record",
        "encounter_planned": "Planned",
        "encounter_arrived": "Arrived",
        "encounter_triaged": "Triaged",
        "encounter_in-progress": "In progress",
        "encounter_onleave": "On leave",
        "encounter_finished": "Finished",
        "encounter_cancelled": "Cancelled",
        "encounter_entered-in-error": "Entered in error",
        "encounter_unknown": "Unknown",
    },
}


def _merge(*parts: dict[str, dict[str, str]]) -> None:
    """Add feature modules' strings (``text_*.py``, one per group of pages) to :data:`TEXT`; a key
    defined twice is a mistake."""
    for part in parts:
        for lang in LANGUAGES:
            clash = TEXT[lang].keys() & part[lang].keys()
            assert not clash, f"console strings defined twice: {sorted(clash)}"
            TEXT[lang].update(part[lang])


_merge(
    text_account.TEXT,
    text_audit.TEXT,
    text_clinical.TEXT,
    text_dashboard.TEXT,
    text_imports.TEXT,
    text_ops.TEXT,
    text_portal.TEXT,
    text_registry.TEXT,
    text_review.TEXT,
)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The ``lang`` cookie, else English only when the browser puts it first, else Vietnamese."""
    if cookie in LANGUAGES:
        return str(cookie)
    first = (accept_language or "").replace(",", " ").replace(";", " ").split()
    return "en" if first and first[0].lower().startswith("en") else "vi"


def translator(lang: str) -> dict[str, str]:
    return TEXT[lang if lang in LANGUAGES else "vi"]
