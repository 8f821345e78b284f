"""The sign-in and consent pages, in Vietnamese or English: plain HTML forms, no script, no
external asset (the style is inline and pinned by its hash in the Content-Security-Policy).

Every value shown is escaped; the pages may not be framed (clickjacking a consent button) nor
cached (a shared computer's back button must not show them again).
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Final

from starlette.responses import HTMLResponse

from ketnoi.auth.scopes import ScopeSet
from ketnoi.security.authorize import Consent

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}"
    "input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    "button{margin:1rem .5rem 0 0;padding:.6rem 1.2rem;font-size:1rem}"
    ".error{color:#a00000;border-left:4px solid #a00000;padding-left:.6rem}"
    "ul{padding-left:1.2rem}code{font-size:.9rem}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
HEADERS: Final = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

TEXT: Final = {
    "vi": {
        "title": "Đăng nhập ketnoi",
        "signin_for": "Đăng nhập để cho phép ứng dụng <b>{app}</b> truy cập dữ liệu y tế.",
        "username": "Tên đăng nhập",
        "password": "Mật khẩu",
        "totp": "Mã xác thực 6 số (nếu tài khoản có bật)",
        "signin": "Đăng nhập",
        "bad": "Tên đăng nhập hoặc mật khẩu không đúng.",
        "locked": "Tài khoản tạm khoá sau nhiều lần sai; hãy thử lại sau {wait} giây.",
        "totp_required": "Tài khoản này cần mã xác thực 6 số từ ứng dụng xác thực; hãy nhập lại mật khẩu và mã.",
        "bad_totp": "Mã xác thực không đúng hoặc đã được dùng.",
        "slow": "Quá nhiều lần thử; hãy đợi {wait} giây.",
        "consent_title": "Cấp quyền cho ứng dụng",
        "consent_intro": "<b>{app}</b> đề nghị được truy cập thay cho <b>{user}</b>:",
        "patient": "Bệnh nhân: <code>Patient/{patient}</code>",
        "choose_patient": "Id của bệnh nhân (Patient) mà ứng dụng sẽ làm việc cùng",
        "allow": "Cho phép",
        "deny": "Từ chối",
        "error_title": "Không thể tiếp tục",
        "read": "đọc và tìm kiếm",
        "write": "tạo, sửa và xoá",
        "all": "mọi loại dữ liệu",
        "identity": "biết bạn là ai",
        "offline": "tiếp tục truy cập khi bạn không dùng ứng dụng (tối đa 30 ngày)",
        "online": "tiếp tục truy cập trong ngày",
        "ctx_patient": "dữ liệu của bệnh nhân đang chọn",
        "ctx_user": "dữ liệu mà bạn được phép xem",
        "ctx_system": "toàn hệ thống",
    },
    "en": {
        "title": "Sign in to ketnoi",
        "signin_for": "Sign in to let <b>{app}</b> access health data.",
        "username": "User name",
        "password": "Password",
        "totp": "6-digit authentication code (if enabled for your account)",
        "signin": "Sign in",
        "bad": "Wrong user name or password.",
        "locked": "The account is locked after repeated failures; try again in {wait} seconds.",
        "totp_required": "This account needs the 6-digit code from your authenticator app: "
        "enter the password and the code.",
        "bad_totp": "The authentication code is wrong or was already used.",
        "slow": "Too many attempts; wait {wait} seconds.",
        "consent_title": "Allow this application",
        "consent_intro": "<b>{app}</b> asks to act for <b>{user}</b>:",
        "patient": "Patient: <code>Patient/{patient}</code>",
        "choose_patient": "The id of the Patient this app will work with",
        "allow": "Allow",
        "deny": "Deny",
        "error_title": "Cannot continue",
        "read": "read and search",
        "write": "create, change and delete",
        "all": "all kinds of data",
        "identity": "know who you are",
        "offline": "keep access while you are not using the app (up to 30 days)",
        "online": "keep access for the day",
        "ctx_patient": "the selected patient's data",
        "ctx_user": "the data you may see",
        "ctx_system": "the whole system",
    },
}


def _page(lang: str, title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def error_page(lang: str, en: str, vi: str, status: int = 400) -> HTMLResponse:
    return _page(lang, TEXT[lang]["error_title"], f'<p class="error">{escape(vi if lang == "vi" else en)}</p>', status)


def sign_in_page(lang: str, pending_id: str, app: str, message: str | None = None, status: int = 200) -> HTMLResponse:
    t = TEXT[lang]
    error = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    body = (
        f"<p>{t['signin_for'].format(app=escape(app))}</p>{error}"
        '<form method="post" action="/auth/authorize/sign-in">'
        f'<input type="hidden" name="request" value="{escape(pending_id)}">'
        f'<label for="username">{t["username"]}</label>'
        '<input id="username" name="username" autocomplete="username" required autofocus>'
        f'<label for="password">{t["password"]}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f'<label for="totp">{t["totp"]}</label>'
        '<input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" maxlength="8">'
        f'<button type="submit">{t["signin"]}</button></form>'
    )
    return _page(lang, t["title"], body, status)


def sign_in_message(lang: str, reason: str | None, wait: float) -> str:
    """One message for unknown user, disabled account and wrong password: no user enumeration."""
    t = TEXT[lang]
    seconds = str(max(1, round(wait)))
    if reason in ("locked", "slow"):
        return t[reason].format(wait=seconds)
    if reason == "totp-required":
        return t["totp_required"]
    if reason == "bad-totp":
        return t["bad_totp"]
    return t["bad"]


def describe(lang: str, scopes: ScopeSet) -> list[str]:
    """The scopes in words, one line each."""
    t = TEXT[lang]
    lines = []
    for scope in sorted(scopes.clinical, key=lambda s: s.canonical()):
        what = t["all"] if scope.resource_type == "*" else scope.resource_type
        verbs = [t["read"]] if scope.permissions & {"r", "s"} else []
        verbs += [t["write"]] if scope.permissions & {"c", "u", "d"} else []
        lines.append(
            f"{' / '.join(verbs)}: {what} — {t['ctx_' + scope.context]} <code>{escape(scope.canonical())}</code>"
        )
    if "openid" in scopes.other:
        lines.append(t["identity"])
    if "offline_access" in scopes.other:
        lines.append(t["offline"])
    elif "online_access" in scopes.other:
        lines.append(t["online"])
    return lines


def consent_page(
    lang: str, pending_id: str, consent: Consent, message: str | None = None, status: int = 200
) -> HTMLResponse:
    t = TEXT[lang]
    items = "".join(f"<li>{line}</li>" for line in describe(lang, consent.scopes))
    patient = f"<p>{t['patient'].format(patient=escape(consent.patient))}</p>" if consent.patient else ""
    choose = (
        f'<label for="patient">{t["choose_patient"]}</label><input id="patient" name="patient" required>'
        if consent.choose_patient
        else ""
    )
    error = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    intro = t["consent_intro"].format(app=escape(consent.client_name), user=escape(consent.user.username))
    body = (
        f"<p>{intro}</p><ul>{items}</ul>{patient}{error}"
        '<form method="post" action="/auth/authorize/consent">'
        f'<input type="hidden" name="request" value="{escape(pending_id)}">{choose}'
        f'<button type="submit" name="decision" value="allow">{t["allow"]}</button>'
        f'<button type="submit" name="decision" value="deny" formnovalidate>{t["deny"]}</button></form>'
    )
    return _page(lang, t["consent_title"], body, status)
