"""The sign-in pages: login, consent, activation, TOTP enrolment, error (Jinja2, server-rendered).

Vietnamese by default, English on request (`?lang=en`, or an Accept-Language preferring it).
Every text shown is in STRINGS, one table per language, so a page cannot mix languages.
Pages carry no script and load nothing: the CSP is `default-src 'none'` with the style
inline; forms may post only to this server and the redirect origins the caller names
(browsers apply form-action to the redirect that follows a form). They are never framed
(clickjacking of the consent button) and never cached (they carry CSRF state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from vnehr.auth.scopes import ScopeError, parse_clinical

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Context every template may use without the caller giving it.
_DEFAULTS: dict[str, Any] = {
    "error": None,
    "show_totp": False,
    "vneid_url": None,
    "activate_url": None,
    "login_url": None,
    "patient_choice": False,
    "done": False,
    "account_name": None,
}


def language(request: Request) -> str:
    """`?lang=` if it names a language of the pages, else the first of Accept-Language's
    (by q) that does, else Vietnamese."""
    asked = request.query_params.get("lang", "")
    if asked in LANGUAGES:
        return asked
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def security_headers(redirect_origins: Iterable[str] = ()) -> dict[str, str]:
    form_action = " ".join(["'self'", *sorted(set(redirect_origins))])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self' 'unsafe-inline'; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
    }


def render(
    template: str,
    lang: str,
    status: int = 200,
    *,
    request: Request | None = None,
    redirect_origins: Iterable[str] = (),
    **context: Any,
) -> HTMLResponse:
    """The page `template` (e.g. "login.html") in `lang`, with the security headers.
    `request` gives the language switch links the current query; `redirect_origins` are
    the origins (scheme://host[:port]) a form's answer may redirect to."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    html = _ENV.get_template(template).render(
        {
            **_DEFAULTS,
            **context,
            "lang": lang,
            "t": STRINGS[lang],
            "languages": _switch(lang, request),
        }
    )
    return HTMLResponse(html, status_code=status, headers=security_headers(redirect_origins))


def _switch(lang: str, request: Request | None) -> list[dict[str, Any]]:
    """Links to this page in each language, keeping the rest of its query."""
    query = (
        [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] if request else []
    )
    return [
        {
            "code": code,
            "label": STRINGS[code]["language"],
            "href": "?" + urlencode([*query, ("lang", code)]),
            "current": code == lang,
        }
        for code in LANGUAGES
    ]


# -- the words --------------------------------------------------------------------------


def login_error(reason: str, lang: str) -> str:
    """What the login page says for a LoginFailed reason: one message for a wrong
    username, password or code, so the page tells a guesser nothing more."""
    key = {"locked": "login_locked", "totp-required": "login_totp_required"}.get(
        reason, "login_failed"
    )
    return STRINGS[lang][key]


def activation_error(reason: str, lang: str, rule: str | None = None) -> str:
    """What the activation page says for an ActivationError (reason, password rule)."""
    if reason == "password" and rule:
        return STRINGS[lang][f"password_{rule}"]
    return STRINGS[lang].get(f"activation_{reason}", STRINGS[lang]["activation_code"])


_TYPES: dict[str, dict[str, str]] = {
    "vi": {
        "*": "Hồ sơ sức khỏe",
        "Patient": "Thông tin hành chính",
        "Observation": "Kết quả xét nghiệm/quan sát",
        "Condition": "Bệnh và chẩn đoán",
        "DiagnosticReport": "Báo cáo chẩn đoán",
        "MedicationRequest": "Đơn thuốc",
        "MedicationStatement": "Thuốc đang dùng",
        "MedicationDispense": "Thuốc đã cấp phát",
        "Immunization": "Lịch sử tiêm chủng",
        "AllergyIntolerance": "Dị ứng",
        "Encounter": "Lượt khám",
        "Procedure": "Thủ thuật, phẫu thuật",
        "DocumentReference": "Tài liệu y tế",
        "ServiceRequest": "Chỉ định",
        "CarePlan": "Kế hoạch chăm sóc",
        "Practitioner": "Nhân viên y tế",
        "Organization": "Cơ sở y tế",
        "Coverage": "Thẻ bảo hiểm y tế",
    },
    "en": {
        "*": "health records",
        "Patient": "demographics",
        "Observation": "lab results and observations",
        "Condition": "conditions and diagnoses",
        "DiagnosticReport": "diagnostic reports",
        "MedicationRequest": "prescriptions",
        "MedicationStatement": "current medications",
        "MedicationDispense": "dispensed medications",
        "Immunization": "immunizations",
        "AllergyIntolerance": "allergies",
        "Encounter": "visits",
        "Procedure": "procedures and operations",
        "DocumentReference": "medical documents",
        "ServiceRequest": "orders",
        "CarePlan": "care plans",
        "Practitioner": "health workers",
        "Organization": "facilities",
        "Coverage": "health insurance cards",
    },
}
_VERBS: dict[str, dict[str, str]] = {
    "vi": {"c": "tạo", "r": "đọc", "u": "sửa", "d": "xóa", "s": "tìm kiếm", "and": "và"},
    "en": {"c": "create", "r": "read", "u": "change", "d": "delete", "s": "search", "and": "and"},
}
_CONTEXTS: dict[str, dict[str, str]] = {
    "vi": {
        "patient": "{verbs} {name} của bạn",
        "patient-other": "{verbs} {name} của bệnh nhân đang mở",
        "user": "{verbs} {name} mà bạn được phép truy cập",
        "system": "{verbs} mọi {name}",
        "only": "chỉ",
    },
    "en": {
        "patient": "{verbs} your {name}",
        "patient-other": "{verbs} the {name} of the patient in context",
        "user": "{verbs} the {name} you are allowed to see",
        "system": "{verbs} all {name}",
        "only": "only",
    },
}


def describe_scope(scope: str, lang: str, *, own_record: bool = True) -> str:
    """A SMART scope as a sentence for the consent page: `patient/Observation.rs` is "Đọc
    và tìm kiếm Kết quả xét nghiệm/quan sát của bạn". `own_record`: the patient in context
    is the person signing in (a citizen), not one a practitioner opened."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    try:
        clinical = parse_clinical(scope)
    except ScopeError:
        return scope
    if clinical is None:
        return STRINGS[lang].get(f"scope_{scope}", scope)
    words = _VERBS[lang]
    verbs = [words[letter] for letter in "rscud" if letter in clinical.permissions]
    joined = verbs[0] if len(verbs) == 1 else f"{', '.join(verbs[:-1])} {words['and']} {verbs[-1]}"
    context = clinical.context
    if context == "patient" and not own_record:
        context = "patient-other"
    name = _TYPES[lang].get(clinical.res_type, clinical.res_type)
    sentence = _CONTEXTS[lang][context].format(verbs=joined, name=name)
    if clinical.query:
        narrowed = ", ".join(f"{k}={v}" for k, v in clinical.query)
        sentence += f" ({_CONTEXTS[lang]['only']} {narrowed})"
    return sentence[0].upper() + sentence[1:]


STRINGS: Mapping[str, dict[str, str]] = {
    "vi": {
        "language": "Tiếng Việt",
        "brand": "vnehr — Hồ sơ sức khỏe điện tử",
        "footer": "Nền tảng hồ sơ sức khỏe điện tử quốc gia. Dữ liệu cá nhân được bảo vệ "
        "theo Nghị định 13/2023/NĐ-CP.",
        "login_title": "Đăng nhập",
        "login_for": "Đăng nhập để tiếp tục với",
        "username": "Số CCCD hoặc tên đăng nhập",
        "password": "Mật khẩu",
        "totp": "Mã xác thực (6 số trong ứng dụng xác thực)",
        "sign_in": "Đăng nhập",
        "or": "hoặc",
        "vneid": "Đăng nhập bằng VNeID",
        "no_account": "Chưa kích hoạt tài khoản?",
        "activate_link": "Kích hoạt bằng mã bảo mật",
        "login_failed": "Số CCCD/tên đăng nhập, mật khẩu hoặc mã xác thực không đúng.",
        "login_locked": "Tài khoản tạm thời bị khóa vì nhập sai nhiều lần. Vui lòng thử lại "
        "sau 15 phút.",
        "login_totp_required": "Vui lòng nhập mã xác thực từ ứng dụng của bạn.",
        "consent_title": "Cấp quyền truy cập",
        "consent_app": "Ứng dụng",
        "consent_asks": "đề nghị được:",
        "signed_in_as": "Bạn đang đăng nhập với tài khoản",
        "patient": "Mã bệnh nhân (Patient id)",
        "patient_hint": "Hồ sơ bệnh nhân mà ứng dụng sẽ mở.",
        "allow": "Cho phép",
        "deny": "Từ chối",
        "consent_note": "Chỉ cho phép nếu bạn tin tưởng ứng dụng này. Bạn có thể thu hồi quyền "
        "bất cứ lúc nào.",
        "activate_title": "Kích hoạt tài khoản",
        "activate_intro": "Nhập số CCCD và mã bảo mật bạn nhận được qua tin nhắn hoặc bản in, "
        "rồi đặt mật khẩu cho tài khoản.",
        "cccd": "Số CCCD",
        "code": "Mã bảo mật",
        "code_hint": "Ví dụ: 7KQ4-M9XT-2H",
        "new_password": "Mật khẩu mới",
        "password_hint": "Ít nhất 10 ký tự, không chỉ gồm chữ số, không chứa số CCCD.",
        "password2": "Nhập lại mật khẩu",
        "activate_button": "Kích hoạt",
        "activated": "Tài khoản của bạn đã được kích hoạt.",
        "can_sign_in": "Bây giờ bạn có thể đăng nhập bằng số CCCD và mật khẩu vừa đặt.",
        "passwords_differ": "Hai mật khẩu không giống nhau.",
        "activation_unknown": "Số CCCD hoặc mã bảo mật không đúng.",
        "activation_code": "Số CCCD hoặc mã bảo mật không đúng.",
        "activation_expired": "Mã bảo mật đã hết hạn. Vui lòng liên hệ cơ sở y tế để được cấp "
        "mã mới.",
        "activation_used": "Mã bảo mật này đã được sử dụng. Hãy đăng nhập, hoặc xin cấp mã mới.",
        "activation_attempts": "Mã bảo mật đã bị nhập sai quá nhiều lần. Vui lòng xin cấp mã mới.",
        "activation_rate-limited": "Bạn đã thử quá nhiều lần. Vui lòng thử lại sau một giờ.",
        "password_short": "Mật khẩu phải có ít nhất 10 ký tự.",
        "password_mismatch": "Hai lần nhập mật khẩu không giống nhau.",
        "password_long": "Mật khẩu không được dài quá 256 ký tự.",
        "password_digits": "Mật khẩu không được chỉ gồm chữ số (như ngày sinh, số điện thoại).",
        "password_username": "Mật khẩu không được chứa số CCCD hoặc tên đăng nhập.",
        "totp_title": "Bật xác thực hai lớp",
        "totp_intro": "Mở ứng dụng xác thực (Google Authenticator, Microsoft Authenticator...), "
        "thêm tài khoản bằng khóa bí mật dưới đây, rồi nhập mã 6 số ứng dụng hiển thị.",
        "secret": "Khóa bí mật",
        "uri": "Hoặc địa chỉ cấu hình (otpauth)",
        "code6": "Mã 6 số",
        "confirm": "Xác nhận",
        "totp_wrong": "Mã không đúng. Hãy kiểm tra giờ trên điện thoại và thử lại.",
        "error_hint": "Hãy quay lại ứng dụng và thử lại. Nếu lỗi lặp lại, vui lòng liên hệ bộ "
        "phận hỗ trợ của ứng dụng.",
        "scope_openid": "Biết bạn là ai (đăng nhập)",
        "scope_fhirUser": "Biết hồ sơ người dùng của bạn",
        "scope_profile": "Xem họ tên của bạn",
        "scope_launch": "Nhận bối cảnh khi được mở từ hệ thống bệnh viện",
        "scope_launch/patient": "Biết bệnh nhân đang được chọn",
        "scope_launch/encounter": "Biết lượt khám đang được chọn",
        "scope_offline_access": "Tiếp tục truy cập khi bạn không dùng ứng dụng, cho đến khi "
        "bạn thu hồi",
        "scope_online_access": "Tiếp tục truy cập trong khi bạn còn đăng nhập",
    },
    "en": {
        "language": "English",
        "brand": "vnehr — Electronic Health Records",
        "footer": "National electronic health record platform. Personal data is protected "
        "under Decree 13/2023/ND-CP.",
        "login_title": "Sign in",
        "login_for": "Sign in to continue to",
        "username": "CCCD number or username",
        "password": "Password",
        "totp": "Verification code (6 digits from your authenticator app)",
        "sign_in": "Sign in",
        "or": "or",
        "vneid": "Sign in with VNeID",
        "no_account": "Account not activated yet?",
        "activate_link": "Activate it with your security code",
        "login_failed": "The CCCD number/username, password or verification code is wrong.",
        "login_locked": "The account is locked for a while after too many wrong attempts. "
        "Please try again in 15 minutes.",
        "login_totp_required": "Please enter the verification code from your app.",
        "consent_title": "Allow access",
        "consent_app": "The application",
        "consent_asks": "asks to:",
        "signed_in_as": "You are signed in as",
        "patient": "Patient id",
        "patient_hint": "The patient record the application will open.",
        "allow": "Allow",
        "deny": "Deny",
        "consent_note": "Allow only if you trust this application. You can take the access "
        "back at any time.",
        "activate_title": "Activate your account",
        "activate_intro": "Enter your CCCD number and the security code you received by SMS "
        "or on paper, then choose a password.",
        "cccd": "CCCD number",
        "code": "Security code",
        "code_hint": "For example: 7KQ4-M9XT-2H",
        "new_password": "New password",
        "password_hint": "At least 10 characters, not only digits, not containing your CCCD.",
        "password2": "Repeat the password",
        "activate_button": "Activate",
        "activated": "Your account is activated.",
        "can_sign_in": "You can now sign in with your CCCD number and the password you chose.",
        "passwords_differ": "The two passwords are not the same.",
        "activation_unknown": "The CCCD number or the security code is not right.",
        "activation_code": "The CCCD number or the security code is not right.",
        "activation_expired": "The security code has expired. Please ask a health facility "
        "for a new one.",
        "activation_used": "This security code has been used already. Sign in, or ask for a "
        "new one.",
        "activation_attempts": "The security code was entered wrongly too many times. Please "
        "ask for a new one.",
        "activation_rate-limited": "Too many attempts. Please try again in an hour.",
        "password_short": "The password must have at least 10 characters.",
        "password_mismatch": "The two passwords are not the same.",
        "password_long": "The password must have at most 256 characters.",
        "password_digits": "The password must not be only digits (such as a date or a phone "
        "number).",
        "password_username": "The password must not contain your CCCD number or username.",
        "totp_title": "Turn on two-step verification",
        "totp_intro": "Open your authenticator app (Google Authenticator, Microsoft "
        "Authenticator...), add an account with the secret key below, then enter the "
        "6-digit code it shows.",
        "secret": "Secret key",
        "uri": "Or the setup address (otpauth)",
        "code6": "6-digit code",
        "confirm": "Confirm",
        "totp_wrong": "The code is not right. Check the time on your phone and try again.",
        "error_hint": "Go back to the application and try again. If this happens again, "
        "please contact the application's support.",
        "scope_openid": "Know who you are (sign-in)",
        "scope_fhirUser": "Know your user record",
        "scope_profile": "See your name",
        "scope_launch": "Receive the context when opened from a hospital system",
        "scope_launch/patient": "Know which patient is selected",
        "scope_launch/encounter": "Know which visit is selected",
        "scope_offline_access": "Keep access while you are not using the application, until "
        "you take it back",
        "scope_online_access": "Keep access while you are signed in",
    },
}
