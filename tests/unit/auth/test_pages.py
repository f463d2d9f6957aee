"""The sign-in pages (vnehr.auth.pages): each template in Vietnamese and English, escaping,
security headers, language choice, scope descriptions."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from starlette.requests import Request

from vnehr.auth.pages import (
    LANGUAGES,
    STRINGS,
    activation_error,
    describe_scope,
    language,
    login_error,
    render,
)

EVIL = '<script>alert("x")</script>'


class Form(HTMLParser):
    """The form fields of a page: name -> (type, value), and the submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, tuple[str, str]] = {}
        self.buttons: list[tuple[str, str]] = []
        self.forms: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(a)
        elif tag == "input" and "name" in a:
            self.fields[a["name"]] = (a.get("type", "text"), a.get("value", ""))
        elif tag == "button":
            self.buttons.append((a.get("name", ""), a.get("value", "")))


def page(template: str, lang: str, **context: Any) -> tuple[str, Form]:
    response = render(template, lang, **context)
    html = bytes(response.body).decode()
    form = Form()
    form.feed(html)
    return html, form


def request(query: str = "", accept_language: str | None = None) -> Request:
    headers = [(b"accept-language", accept_language.encode())] if accept_language else []
    return Request({"type": "http", "query_string": query.encode(), "headers": headers})


LOGIN = {"client_name": "Sổ sức khỏe", "state": "st-1", "action": "/auth/login"}
CONSENT = {
    "client_name": "Sổ sức khỏe",
    "account_name": "Nguyễn Thị Lan",
    "scopes": [("patient/Observation.rs", "Đọc và tìm kiếm Kết quả xét nghiệm/quan sát")],
    "state": "st-2",
    "action": "/auth/consent",
}
ACTIVATE = {"state": "csrf-3", "action": "/auth/activate"}
TOTP = {
    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "uri": "otpauth://totp/vnehr:bs.hoa",
    "state": "st-4",
    "action": "/auth/totp",
}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_login_page_has_its_fields_and_speaks_the_language(lang: str) -> None:
    html, form = page("login.html", lang, **LOGIN)
    assert form.forms == [{"method": "post", "action": "/auth/login"}]
    assert form.fields == {
        "state": ("hidden", "st-1"),
        "username": ("text", ""),
        "password": ("password", ""),
    }
    assert f'<html lang="{lang}">' in html
    label = {"vi": "Số CCCD hoặc tên đăng nhập", "en": "CCCD number or username"}[lang]
    assert label in html
    assert ("vnehr — Hồ sơ sức khỏe điện tử" in html) == (lang == "vi")
    assert "VNeID" not in html


def test_the_login_page_asks_for_the_totp_code_and_offers_vneid_when_told() -> None:
    html, form = page(
        "login.html",
        "vi",
        **LOGIN,
        show_totp=True,
        error="Vui lòng nhập mã xác thực",
        vneid_url="https://vneid.example/authorize?x=1&y=2",
        username="bs.hoa",
    )
    assert set(form.fields) == {"state", "username", "password", "totp"}
    assert form.fields["username"] == ("text", "bs.hoa")
    assert 'role="alert">Vui lòng nhập mã xác thực<' in html
    assert 'href="https://vneid.example/authorize?x=1&amp;y=2"' in html
    assert "Đăng nhập bằng VNeID" in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_consent_page_lists_the_scopes_and_offers_allow_and_deny(lang: str) -> None:
    html, form = page("consent.html", lang, **CONSENT)
    assert form.fields == {"state": ("hidden", "st-2")}
    assert sorted(form.buttons) == [("decision", "allow"), ("decision", "deny")]
    assert "Đọc và tìm kiếm Kết quả xét nghiệm/quan sát" in html
    assert "Nguyễn Thị Lan" in html
    assert {"vi": "Cho phép", "en": "Allow"}[lang] in html


def test_the_consent_page_asks_a_practitioner_for_the_patient() -> None:
    _, form = page("consent.html", "en", **CONSENT, patient_choice=True)
    assert set(form.fields) == {"state", "patient"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_activation_page_has_its_fields_then_says_it_is_done(lang: str) -> None:
    html, form = page("activate.html", lang, **ACTIVATE, error="Sai mã", cccd="001185012345")
    assert form.fields == {
        "state": ("hidden", "csrf-3"),
        "cccd": ("text", "001185012345"),
        "code": ("text", ""),
        "password": ("password", ""),
        "password2": ("password", ""),
    }
    assert "Sai mã" in html
    html, form = page("activate.html", lang, **ACTIVATE, done=True, login_url="/auth/login")
    assert form.fields == {}
    assert STRINGS[lang]["activated"] in html and STRINGS[lang]["can_sign_in"] in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_totp_page_shows_the_secret_grouped_and_the_uri(lang: str) -> None:
    html, form = page("totp.html", lang, **TOTP)
    assert form.fields == {"state": ("hidden", "st-4"), "code": ("text", "")}
    assert "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP" in html
    assert "otpauth://totp/vnehr:bs.hoa" in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_error_page_shows_title_and_message(lang: str) -> None:
    html, form = page("error.html", lang, title="Yêu cầu không hợp lệ", message="redirect_uri")
    assert form.forms == []
    assert "<h1>Yêu cầu không hợp lệ</h1>" in html and "redirect_uri" in html


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("login.html", LOGIN),
        ("consent.html", CONSENT),
        ("activate.html", ACTIVATE),
        ("totp.html", TOTP),
    ],
)
def test_every_text_it_is_given_is_escaped(template: str, context: dict[str, Any]) -> None:
    given = {**context, "error": EVIL, "account_name": EVIL, "scopes": [(EVIL, EVIL)]}
    evil = {k: EVIL if isinstance(v, str) else v for k, v in given.items()}
    html, _ = page(template, "vi", **evil)
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_a_malicious_client_name_cannot_break_out_of_an_attribute() -> None:
    html, form = page("login.html", "vi", **{**LOGIN, "state": '"><img src=x onerror=alert(1)>'})
    assert "<img" not in html
    assert form.fields["state"] == ("hidden", '"><img src=x onerror=alert(1)>')


def test_pages_carry_the_security_headers() -> None:
    response = render(
        "login.html",
        "vi",
        **LOGIN,
        redirect_origins=["https://app.example.vn", "http://127.0.0.1:9000"],
    )
    headers = response.headers
    assert headers["content-security-policy"] == (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; "
        "form-action 'self' http://127.0.0.1:9000 https://app.example.vn; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"] == "text/html; charset=utf-8"


def test_a_page_can_be_rendered_with_another_status() -> None:
    assert render("error.html", "en", 400, title="Bad request", message="no").status_code == 400


def test_pages_have_no_script_and_load_nothing() -> None:
    html, _ = page("login.html", "vi", **LOGIN, vneid_url="https://vneid.example")
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert "<style>" in html


def test_the_language_switch_keeps_the_rest_of_the_query() -> None:
    html, _ = page(
        "login.html", "en", **LOGIN, request=request("client_id=abc&scope=openid+fhirUser&lang=en")
    )
    links = re.findall(r'<a href="([^"]+)" hreflang="(\w+)"', html)
    assert links == [
        ("?client_id=abc&amp;scope=openid+fhirUser&amp;lang=vi", "vi"),
        ("?client_id=abc&amp;scope=openid+fhirUser&amp;lang=en", "en"),
    ]
    assert 'lang="en" aria-current="true">English</a>' in html


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", None, "vi"),
        ("lang=en", None, "en"),
        ("lang=vi", "en-US,en;q=0.9", "vi"),
        ("lang=fr", "en", "en"),
        ("", "en-US,en;q=0.9,vi;q=0.8", "en"),
        ("", "vi-VN,vi;q=0.9,en;q=0.8", "vi"),
        ("", "fr-FR,en;q=0.5,vi;q=0.7", "vi"),
        ("", "fr, de;q=0.5", "vi"),
        ("", "en;q=0, vi;q=0.1", "vi"),
        ("", "en;q=zzz", "vi"),
    ],
)
def test_the_language_comes_from_the_query_then_accept_language(
    query: str, accept: str | None, expected: str
) -> None:
    assert language(request(query, accept)) == expected


def test_both_languages_have_every_string() -> None:
    assert STRINGS["vi"].keys() == STRINGS["en"].keys()
    assert all(text.strip() for table in STRINGS.values() for text in table.values())


@pytest.mark.parametrize(
    ("scope", "vi", "en"),
    [
        (
            "patient/Observation.rs",
            "Đọc và tìm kiếm Kết quả xét nghiệm/quan sát của bạn",
            "Read and search your lab results and observations",
        ),
        (
            "patient/Immunization.read",
            "Đọc và tìm kiếm Lịch sử tiêm chủng của bạn",
            "Read and search your immunizations",
        ),
        (
            "user/*.cruds",
            "Đọc, tìm kiếm, tạo, sửa và xóa Hồ sơ sức khỏe mà bạn được phép truy cập",
            "Read, search, create, change and delete the health records you are allowed to see",
        ),
        ("system/Patient.r", "Đọc mọi Thông tin hành chính", "Read all demographics"),
        (
            "patient/Observation.rs?category=laboratory",
            "Đọc và tìm kiếm Kết quả xét nghiệm/quan sát của bạn (chỉ category=laboratory)",
            "Read and search your lab results and observations (only category=laboratory)",
        ),
        ("patient/Basic.r", "Đọc Basic của bạn", "Read your Basic"),
        ("openid", "Biết bạn là ai (đăng nhập)", "Know who you are (sign-in)"),
        ("something/else.x", "something/else.x", "something/else.x"),
        ("patient/Observation.zz", "patient/Observation.zz", "patient/Observation.zz"),
    ],
)
def test_scopes_are_described_in_words(scope: str, vi: str, en: str) -> None:
    assert describe_scope(scope, "vi") == vi
    assert describe_scope(scope, "en") == en


def test_a_practitioners_patient_scope_is_about_the_patient_in_context() -> None:
    assert describe_scope("patient/Condition.rs", "vi", own_record=False) == (
        "Đọc và tìm kiếm Bệnh và chẩn đoán của bệnh nhân đang mở"
    )


def test_wrong_username_password_and_code_read_the_same_on_the_login_page() -> None:
    for lang in LANGUAGES:
        same = {login_error(r, lang) for r in ("unknown", "password", "totp", "disabled")}
        assert len(same) == 1
        assert login_error("locked", lang) not in same


def test_activation_errors_are_translated_and_unknown_reads_as_a_wrong_code() -> None:
    assert activation_error("unknown", "vi") == activation_error("code", "vi")
    assert activation_error("expired", "en").startswith("The security code has expired")
    assert activation_error("password", "vi", "digits").startswith("Mật khẩu không được chỉ")
    assert activation_error("something-new", "en") == activation_error("code", "en")
