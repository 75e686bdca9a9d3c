"""What people type can never run as code in a page: every template is autoescaped, none
holds inline script, event handlers or styles (the Content-Security-Policy would block
them anyway), and nothing marks text as safe HTML. Scripts only touch the page through
textContent and attributes. HSTS and Secure cookies come with HTTPS, and only with it.

These read every file, so templates and scripts added later are checked too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from parent_portal.app import create_app
from parent_portal.templating import _env, templates
from school.settings import Settings
from tests.conftest import FakeClock
from tests.factories import SmallSchool
from tests.parent_portal.conftest import TestClient, login

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "parent_portal" / "templates").rglob("*.*"))
SCRIPTS = sorted((ROOT / "parent_portal" / "static").rglob("*.js"))
PACKAGES = ("school", "cardpay", "webcam", "parent_portal", "hardware", "firmware_mocks",
            "moulin")

TAG = re.compile(r"<[a-zA-Z][^>]*>", re.S)
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)
UNSAFE_JINJA = re.compile(r"\|\s*safe\b|autoescape\s+false|\bMarkup\b|\|\s*unescape")
UNSAFE_DOM = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|"
                        r"new Function\(|setTimeout\(\s*['\"]")


def names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_there_are_templates_and_scripts_to_check() -> None:
    assert "base.html" in names(TEMPLATES)
    assert "till.js" in names(SCRIPTS)


@pytest.mark.parametrize("path", TEMPLATES, ids=names(TEMPLATES))
def test_no_inline_script_handler_or_style(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for attrs, body in SCRIPT.findall(text):
        assert "src=" in attrs, f"{path.name}: a <script> without src (put it in static/)"
        assert not body.strip(), f"{path.name}: an inline script body"
    for tag in TAG.findall(text):
        assert not HANDLER.search(tag), f"{path.name}: inline event handler in {tag!r}"
        assert not STYLE_ATTR.search(tag), f"{path.name}: inline style in {tag!r}"
        assert "javascript:" not in tag.lower(), f"{path.name}: javascript: URL in {tag!r}"
    assert "<style" not in text.lower(), f"{path.name}: inline <style> block"


@pytest.mark.parametrize("path", TEMPLATES, ids=names(TEMPLATES))
def test_nothing_is_marked_safe_html(path: Path) -> None:
    found = UNSAFE_JINJA.search(path.read_text(encoding="utf-8"))
    assert found is None, f"{path.name}: {found.group(0)!r} would render text unescaped"


@pytest.mark.parametrize("path", TEMPLATES, ids=names(TEMPLATES))
def test_every_template_is_autoescaped(path: Path) -> None:
    """Whatever its extension (.html, .svg, .txt…): the environment escapes them all."""
    autoescape = _env.autoescape
    name = path.relative_to(ROOT / "parent_portal" / "templates").as_posix()
    assert (autoescape(name) if callable(autoescape) else autoescape) is True
    assert templates.env is _env
    rendered = _env.from_string("{{ x }}").render(x="<b onclick=alert(1)>")
    assert rendered == "&lt;b onclick=alert(1)&gt;"


@pytest.mark.parametrize("path", SCRIPTS, ids=names(SCRIPTS))
def test_scripts_never_write_html(path: Path) -> None:
    found = UNSAFE_DOM.search(path.read_text(encoding="utf-8"))
    assert found is None, f"{path.name}: {found.group(0)!r}; use textContent instead"


def _python_sources() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def test_no_other_template_engine_or_markup_in_the_code() -> None:
    """Another Jinja environment would need its own autoescape; Markup() bypasses it."""
    problems = []
    for path in _python_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if called == "Markup":
                problems.append(f"{where}: Markup()")
            if called in ("Environment", "Template"):
                escaping = [k for k in node.keywords if k.arg == "autoescape"]
                if not escaping or not (isinstance(escaping[0].value, ast.Constant)
                                        and escaping[0].value.value is True):
                    problems.append(f"{where}: {called}() without autoescape=True")
    assert problems == []


def test_hsts_and_secure_cookies_only_with_https(
    settings: Settings, engine: object, clock: FakeClock, small_school: SmallSchool,
) -> None:
    for https in (False, True):
        app = create_app(settings.model_copy(update={"https": https}), engine,  # type: ignore[arg-type]
                         clock=clock)
        scheme = "https" if https else "http"
        with TestClient(app, base_url=f"{scheme}://testserver",
                        follow_redirects=False) as client:
            for path in ("/login", "/healthz", "/static/moulin.css", "/no-such-page"):
                headers = client.get(path).headers
                assert ("strict-transport-security" in headers) is https, (path, https)
            signed = login(client, "parent@example.org")
            assert signed.status_code == 303
            cookies = signed.headers.get_list("set-cookie")
            assert cookies
            for cookie in cookies:
                assert ("; secure" in cookie.lower()) is https, cookie
                assert "httponly" in cookie.lower(), cookie
