"""The ASGI application built from the environment's settings, for uvicorn workers."""

from __future__ import annotations

from fastapi import FastAPI

from parent_portal.app import create_app
from school import logs
from school.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    if not logs.configured():  # a worker process of `moulin serve --workers N`
        logs.configure(settings.log_format)
    return create_app(settings)
