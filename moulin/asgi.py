"""The ASGI application built from the environment's settings, for uvicorn workers."""

from __future__ import annotations

from fastapi import FastAPI

from moulin.gc_tuning import tune_for_serving
from parent_portal.app import create_app
from school.settings import Settings


def app() -> FastAPI:
    built = create_app(Settings())
    tune_for_serving()
    return built
