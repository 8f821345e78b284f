"""The strings of the patient portal's appointments and download pages (merged into
:data:`ketnoi.console.i18n.TEXT`). ``appt_<status>`` are built in code (``portal_pages.STATUSES``)."""

from __future__ import annotations

from typing import Final

TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "nav_me_appointments": "Lịch hẹn",
        "me_appointments_title": "Lịch hẹn của tôi",
        "me_appointments_intro": "Các lần hẹn khám, tái khám và tiêm chủng mà cơ sở y tế đã đặt cho bạn. "
        "Giờ theo giờ Việt Nam.",
        "me_upcoming": "Sắp tới",
        "me_past": "Đã qua",
        "me_upcoming_caption": "Lịch hẹn sắp tới, gần nhất trước",
        "me_past_caption": "Lịch hẹn đã qua, gần đây nhất trước",
        "me_no_upcoming": "Bạn không có lịch hẹn nào sắp tới.",
        "me_no_past": "Chưa có lịch hẹn nào đã qua.",
        "me_appointments_more": "Chỉ hiện 50 lịch hẹn mỗi loại; tải hồ sơ về để xem tất cả.",
        "appt_when": "Thời gian",
        "me_unscheduled": "Chưa xếp lịch",
        "me_unscheduled_intro": (
            "Các lần hẹn đã được đề nghị hoặc đang chờ, cơ sở y tế chưa hẹn giờ. Bạn sẽ thấy chúng ở mục "
            "Sắp tới khi đã có giờ hẹn."
        ),
        "me_unscheduled_caption": "Lịch hẹn chưa xếp giờ, khoảng thời gian mong muốn sớm nhất trước",
        "appt_requested": "Khoảng thời gian mong muốn",
        "appt_from": "từ {day}",
        "appt_until": "trước {day}",
        "appt_no_period": "Chưa có",
        "appt_place": "Nơi khám",
        "appt_practitioner": "Người khám",
        "appt_reason": "Lý do",
        "appt_instructions": "Dặn dò",
        "appt_proposed": "Đề xuất, chưa xác nhận",
        "appt_pending": "Đang chờ xác nhận",
        "appt_booked": "Đã đặt lịch",
        "appt_arrived": "Đã đến",
        "appt_fulfilled": "Đã khám xong",
        "appt_cancelled": "Đã huỷ",
        "appt_noshow": "Không đến",
        "appt_entered-in-error": "Ghi nhầm",
        "appt_checked-in": "Đã làm thủ tục",
        "appt_waitlist": "Trong danh sách chờ",
        "me_download": "Tải hồ sơ về máy",
        "me_download_hint": "Một tệp JSON theo chuẩn FHIR R4 (Bundle) chứa toàn bộ hồ sơ của bạn, để lưu hoặc "
        "mang tới cơ sở y tế khác. Hãy giữ tệp cẩn thận: đó là thông tin sức khoẻ của bạn.",
        "me_download_failed": "Không tải được hồ sơ lúc này; hãy thử lại sau.",
        "me_download_too_big": "Hồ sơ quá lớn để tải trong một tệp; hãy liên hệ cơ sở y tế.",
    },
    "en": {
        "nav_me_appointments": "Appointments",
        "me_appointments_title": "My appointments",
        "me_appointments_intro": "Visits, follow-ups and vaccinations health facilities have booked for you. "
        "Times are Vietnam time.",
        "me_upcoming": "Upcoming",
        "me_past": "Past",
        "me_upcoming_caption": "Upcoming appointments, soonest first",
        "me_past_caption": "Past appointments, latest first",
        "me_no_upcoming": "You have no upcoming appointment.",
        "me_no_past": "No past appointment yet.",
        "me_appointments_more": "Only 50 appointments of each kind are shown; download your record to see them all.",
        "appt_when": "When",
        "me_unscheduled": "Not yet scheduled",
        "me_unscheduled_intro": (
            "Appointments proposed or waiting, to which the facility has not yet given a time. They move to "
            "Upcoming once they have one."
        ),
        "me_unscheduled_caption": "Appointments not yet scheduled, the earliest requested period first",
        "appt_requested": "Requested period",
        "appt_from": "from {day}",
        "appt_until": "by {day}",
        "appt_no_period": "Not given",
        "appt_place": "Where",
        "appt_practitioner": "With",
        "appt_reason": "Reason",
        "appt_instructions": "Instructions",
        "appt_proposed": "Proposed, not confirmed",
        "appt_pending": "Awaiting confirmation",
        "appt_booked": "Booked",
        "appt_arrived": "Arrived",
        "appt_fulfilled": "Attended",
        "appt_cancelled": "Cancelled",
        "appt_noshow": "Missed",
        "appt_entered-in-error": "Entered in error",
        "appt_checked-in": "Checked in",
        "appt_waitlist": "On the waiting list",
        "me_download": "Download my record",
        "me_download_hint": "One FHIR R4 JSON file (a Bundle) with your whole record, to keep or to take to "
        "another facility. Keep it safe: it is your health information.",
        "me_download_failed": "Your record could not be downloaded just now; try again later.",
        "me_download_too_big": "Your record is too large for one file; ask your health facility.",
    },
}
