"""The strings of the account page, ``/account`` (merged into :data:`ketnoi.console.i18n.TEXT`)."""

from __future__ import annotations

from typing import Final

TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "nav_account": "Tài khoản của tôi",
        "account_title": "Tài khoản của tôi",
        "account_none": "Máy chủ đang chạy không cần đăng nhập (--auth off), hoặc bạn không đăng nhập bằng tài "
        "khoản của máy chủ này: không có tài khoản nào để thay đổi ở đây.",
        "account_who": "Thông tin tài khoản",
        "account_record": "Hồ sơ của tôi",
        "account_totp": "Đăng nhập hai bước (TOTP)",
        "account_totp_on": "Đang bật",
        "account_totp_off": "Đang tắt",
        "account_totp_explain": (
            "Khi bật, mỗi lần đăng nhập cần thêm mã 6 số từ ứng dụng xác thực trên điện thoại (Google "
            "Authenticator, Microsoft Authenticator, FreeOTP...): lộ mật khẩu thôi thì chưa vào được tài khoản."
        ),
        "account_totp_required": "Tài khoản quản trị luôn phải có đăng nhập hai bước: bạn có thể thay khoá "
        "(ví dụ khi đổi điện thoại) nhưng không thể tắt.",
        "account_totp_start": "Bật đăng nhập hai bước",
        "account_totp_replace": "Thay khoá (điện thoại mới)",
        "account_totp_off_title": "Tắt đăng nhập hai bước",
        "account_totp_off_button": "Tắt đăng nhập hai bước",
        "account_current_password": "Mật khẩu hiện tại",
        "account_current_code": "Mã 6 số hiện tại từ ứng dụng xác thực",
        "account_code_hint": "6 chữ số, ví dụ 123456.",
        "account_password": "Đổi mật khẩu",
        "account_new_password": "Mật khẩu mới",
        "account_password_hint": "Ít nhất 12 ký tự, không chứa tên đăng nhập, không phải mật khẩu phổ biến; "
        "nên dùng một câu dễ nhớ.",
        "account_password_button": "Đổi mật khẩu",
        "account_password_others": "Sau khi đổi, mọi phiên đăng nhập khác của tài khoản (trình duyệt khác, ứng "
        "dụng khác) đều bị đăng xuất; phiên này vẫn tiếp tục.",
        "account_not_changed": "Chưa thay đổi gì: hãy sửa trường được đánh dấu bên dưới.",
        "account_done_totp": "Đã bật đăng nhập hai bước với khoá mới. Lần đăng nhập sau sẽ cần mã 6 số.",
        "account_done_totp_off": "Đã tắt đăng nhập hai bước.",
        "account_done_password": "Đã đổi mật khẩu.",
        "account_ended": "Đã đăng xuất {n} phiên đăng nhập khác.",
        "account_totp_setup": "Thiết lập đăng nhập hai bước",
        "account_totp_step_scan": "Quét mã QR bằng ứng dụng xác thực trên điện thoại, hoặc nhập khoá bằng tay.",
        "account_totp_step_code": "Nhập mã 6 số ứng dụng đang hiện cho khoá này, cùng mật khẩu hiện tại.",
        "account_totp_step_old": "Vì đang thay khoá, hãy nhập thêm mã 6 số của khoá cũ (ứng dụng đang dùng).",
        "account_totp_pending": "Khoá này chỉ có hiệu lực sau khi bạn xác nhận bằng mã; đến lúc đó khoá cũ (nếu "
        "có) vẫn dùng được. Đừng chia sẻ khoá hay ảnh chụp mã QR.",
        "account_new_code": "Mã 6 số từ khoá mới",
        "account_old_code": "Mã 6 số từ khoá đang dùng",
        "account_totp_confirm": "Xác nhận và bật",
        "account_back": "Quay lại tài khoản (không thay đổi gì)",
        "account_totp_expired": "Không có khoá nào đang chờ xác nhận (phiên đã hết hạn hoặc khoá đã được xác "
        "nhận): hãy bắt đầu lại.",
    },
    "en": {
        "nav_account": "My account",
        "account_title": "My account",
        "account_none": "This server runs without sign-in (--auth off), or you are not signed in with an account "
        "of this server: there is no account to change here.",
        "account_who": "Account",
        "account_record": "My record",
        "account_totp": "Two-step sign-in (TOTP)",
        "account_totp_on": "On",
        "account_totp_off": "Off",
        "account_totp_explain": (
            "When it is on, every sign-in also asks for the 6-digit code of an authenticator app on your phone "
            "(Google Authenticator, Microsoft Authenticator, FreeOTP...): a leaked password alone does not open "
            "your account."
        ),
        "account_totp_required": "An administrator's account always has two-step sign-in: you may replace the "
        "key (a new phone, say) but not turn it off.",
        "account_totp_start": "Turn on two-step sign-in",
        "account_totp_replace": "Replace the key (a new phone)",
        "account_totp_off_title": "Turn off two-step sign-in",
        "account_totp_off_button": "Turn off two-step sign-in",
        "account_current_password": "Current password",
        "account_current_code": "The 6-digit code your authenticator app shows now",
        "account_code_hint": "6 digits, for example 123456.",
        "account_password": "Change the password",
        "account_new_password": "New password",
        "account_password_hint": "At least 12 characters, not containing the user name, not a common password; "
        "a sentence you remember works well.",
        "account_password_button": "Change the password",
        "account_password_others": "Once it is changed, every other sign-in of the account (other browsers, "
        "other apps) is signed out; this one goes on.",
        "account_not_changed": "Nothing changed: correct the field marked below.",
        "account_done_totp": "Two-step sign-in is on with the new key. Your next sign-in will ask for the code.",
        "account_done_totp_off": "Two-step sign-in is off.",
        "account_done_password": "Your password is changed.",
        "account_ended": "{n} other sign-ins were signed out.",
        "account_totp_setup": "Set up two-step sign-in",
        "account_totp_step_scan": "Scan the QR code with the authenticator app on your phone, or type the key.",
        "account_totp_step_code": "Type the 6-digit code the app shows for this key, and your current password.",
        "account_totp_step_old": "As you are replacing a key, also type a code of the old key (the app you use now).",
        "account_totp_pending": "This key takes effect only once you confirm it with a code; until then the old "
        "one (if any) still works. Do not share the key or a picture of the QR code.",
        "account_new_code": "6-digit code of the new key",
        "account_old_code": "6-digit code of the key in use",
        "account_totp_confirm": "Confirm and turn on",
        "account_back": "Back to the account (nothing changed)",
        "account_totp_expired": "No key is waiting for confirmation (the session expired, or the key was "
        "confirmed already): start again.",
    },
}
