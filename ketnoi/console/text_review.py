"""The strings of the console's review queue (merged into :data:`ketnoi.console.i18n.TEXT`)."""

from __future__ import annotations

from typing import Final

TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "nav_review": "Trùng hồ sơ",
        "review_title": "Hồ sơ có thể trùng người",
        "review_intro": (
            "Chỉ số bệnh nhân tìm thấy những cặp hồ sơ có thể là cùng một người nhưng chưa chắc chắn. "
            "So sánh từng cặp và quyết định: cùng một người thì hai hồ sơ được liên kết (không hồ sơ nào bị "
            "xoá hay sửa); hai người khác nhau thì cặp này không được đề xuất lại."
        ),
        "review_caption": "Các cặp đang chờ quyết định, mới nhất trước",
        "review_records": "Hai hồ sơ",
        "review_grade": "Mức độ giống",
        "review_compare": "So sánh",
        "review_empty": "Không có cặp hồ sơ nào chờ xem xét (hoặc bạn không được phép xem).",
        "review_done_linked": "Đã ghi nhận: cùng một người. Hai hồ sơ đã được liên kết.",
        "review_done_rejected": "Đã ghi nhận: hai người khác nhau. Cặp này sẽ không được đề xuất lại.",
        "review_pair_title": "So sánh hai hồ sơ",
        "review_probability": "xác suất",
        "review_field": "Thông tin",
        "review_match": "Đối chiếu",
        "review_same": "Giống",
        "review_differs": "≠ Khác",
        "review_phone": "Điện thoại",
        "review_question": "Hai hồ sơ này có phải của cùng một người không?",
        "review_same_person": "Cùng một người",
        "review_different": "Hai người khác nhau",
        "review_changed": "Người khác vừa quyết định cặp này; hãy tải lại để xem.",
        "review_reload": "Tải lại",
        "review_unreadable": "Bạn không được phép xem một trong hai hồ sơ, nên chỉ thấy một phần.",
        "grade_certain": "Chắc chắn",
        "grade_probable": "Nhiều khả năng",
        "grade_possible": "Có thể",
    },
    "en": {
        "nav_review": "Duplicates",
        "review_title": "Records that may be the same person",
        "review_intro": (
            "The patient index found pairs of records that may be one person, but not surely. Compare each "
            "pair and decide: the same person links the two records (neither is deleted or changed); two "
            "different people means the pair is never suggested again."
        ),
        "review_caption": "Pairs waiting for a decision, newest first",
        "review_records": "The two records",
        "review_grade": "Likeness",
        "review_compare": "Compare",
        "review_empty": "No pair of records is waiting for review (or you may not see them).",
        "review_done_linked": "Recorded: the same person. The two records are linked.",
        "review_done_rejected": "Recorded: two different people. The pair will not be suggested again.",
        "review_pair_title": "Compare two records",
        "review_probability": "probability",
        "review_field": "Field",
        "review_match": "Comparison",
        "review_same": "Same",
        "review_differs": "≠ Differs",
        "review_phone": "Phone",
        "review_question": "Are these two records the same person?",
        "review_same_person": "The same person",
        "review_different": "Two different people",
        "review_changed": "Someone else has just decided this pair; reload to see it.",
        "review_reload": "Reload",
        "review_unreadable": "You may not see one of the two records, so you see only part of the pair.",
        "grade_certain": "Certain",
        "grade_probable": "Probable",
        "grade_possible": "Possible",
    },
}
