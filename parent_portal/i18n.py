"""French and English strings for the pages, and the choice of language for a request."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path

from starlette.requests import Request

logger = logging.getLogger(__name__)

LANGUAGES = ("fr", "en")
LANG_COOKIE = "moulin_lang"
LANG_PARAM = "lang"
_LOCALES = Path(__file__).parent / "locales"

Translator = Callable[..., str]


@cache
def catalog(lang: str) -> dict[str, str]:
    """The strings of one language, read once per process."""
    with (_LOCALES / f"{lang}.json").open(encoding="utf-8") as fh:
        data: dict[str, str] = json.load(fh)
    return data


def translator(lang: str) -> Translator:
    """A `t('key', name=...)` function for templates and handlers in `lang`."""
    strings = catalog(lang)

    def t(key: str, **values: object) -> str:
        text = strings.get(key)
        if text is None:
            # A missing string shows its key rather than breaking the page; tests keep
            # the catalogs complete.
            logger.warning("missing %s string %r", lang, key)
            return key
        return text.format(**values) if values else text

    return t


def _supported(value: str | None) -> str | None:
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str) -> str | None:
    """The first supported language of an Accept-Language header, by quality."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        lang = _supported(tag)
        if lang and quality > 0:
            choices.append((-quality, index, lang))
    return min(choices)[2] if choices else None


def requested_switch(request: Request) -> str | None:
    """The language asked for by the footer's `?lang=` link, if any."""
    return _supported(request.query_params.get(LANG_PARAM))


def choose_language(request: Request, user_locale: str | None, default: str) -> str:
    """`?lang=`, then the cookie it set, then the user's own setting, then the browser's,
    then the deployment's default."""
    return (
        requested_switch(request)
        or _supported(request.cookies.get(LANG_COOKIE))
        or _supported(user_locale)
        or from_accept_language(request.headers.get("accept-language", ""))
        or (default if default in LANGUAGES else LANGUAGES[0])
    )
