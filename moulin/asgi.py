"""The ASGI application built from the environment's settings, for uvicorn workers."""

from __future__ import annotations

from fastapi import FastAPI

from parent_portal.app import create_app
from school.settings import Settings


def app() -> FastAPI:
    return create_app(Settings())
