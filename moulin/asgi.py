"""The ASGI application built from the environment's settings, for uvicorn workers."""

from __future__ import annotations

from fastapi import FastAPI

from moulin.tuning import tune_for_serving
from parent_portal.app import create_app
from school import logs
from school.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    if not logs.configured():  # a worker process of `moulin serve --workers N`
        logs.configure(settings.log_format)
    built = create_app(settings)
    # What exists now lives as long as the process: out of the cyclic collector's sight,
    # whose full passes otherwise stall every request (moulin.tuning).
    tune_for_serving()
    return built
