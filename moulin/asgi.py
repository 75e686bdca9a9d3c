"""The ASGI application built from the environment's settings, for uvicorn workers."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from parent_portal.app import create_app
from school import logs
from school.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    if not logs.configured():  # a worker process of `moulin serve --workers N`
        logs.configure(settings.log_format)
    application = create_app(settings)
    # Everything built so far (modules, the app, SQLAlchemy's mappers) lives as long as the
    # process: keep it out of the cyclic collector, whose full passes over it otherwise
    # stall every request for 60-130 ms (measured with bench/till.py; see
    # docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    return application
