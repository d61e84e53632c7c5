"""Assembles a sandbox FastAPI app from its collections."""

from collections.abc import Sequence

from fastapi import FastAPI

from sandbox._admin import admin_router
from sandbox._data import Sample
from sandbox._lookup import Collection, lookup_router
from sandbox._stats import Stats
from sandbox.config import SandboxSettings


def build_app(
    *,
    title: str,
    settings: SandboxSettings,
    collections: Sequence[Collection],
    records: int,
    sample: Sample,
) -> FastAPI:
    """An app serving ``collections``; its :class:`Stats` is ``app.state.stats``."""
    stats = Stats(route for c in collections for route in (c.get_route, c.batch_route))
    app = FastAPI(title=title, version="1")
    app.state.stats = stats
    app.state.settings = settings
    for collection in collections:
        app.include_router(lookup_router(collection, settings, stats))
    app.include_router(admin_router(records=records, stats=stats, sample=sample))
    return app
