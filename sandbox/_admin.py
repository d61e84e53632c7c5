"""Routes that are about the sandbox itself: health, call counts and sample ids."""

from fastapi import APIRouter, Response

from sandbox._data import Sample
from sandbox._responses import json_response
from sandbox._stats import Stats


def admin_router(*, records: int, stats: Stats, sample: Sample) -> APIRouter:
    """``/healthz``, ``/_sandbox/stats``, ``/_sandbox/stats/reset`` and ``/_sandbox/sample``."""
    router = APIRouter()
    sample_body = sample.to_json()

    @router.get("/healthz", name="healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok", "records": records})

    @router.get("/_sandbox/stats", name="sandbox.stats")
    async def get_stats() -> Response:
        return json_response(stats.snapshot())

    @router.post("/_sandbox/stats/reset", name="sandbox.stats_reset")
    async def reset_stats() -> Response:
        stats.reset()
        return json_response(stats.snapshot())

    @router.get("/_sandbox/sample", name="sandbox.sample")
    async def get_sample() -> Response:
        return json_response(sample_body)

    return router
