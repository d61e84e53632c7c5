"""Readiness: the access log's lag against the maximum merge delay."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from gateway.errors import LogBehindPublished
from gateway.web._health import access_log_status


class _Log:
    def __init__(self, lag: float, *, broken: bool = False) -> None:
        self._lag, self._broken = lag, broken

    async def size(self) -> int:
        if self._broken:
            raise ConnectionError
        return 42

    async def queued(self) -> int:
        return 3

    async def lag(self) -> float:
        return self._lag


def _state(lag: float, *, halted: Any = None, **kwargs: bool) -> SimpleNamespace:
    return SimpleNamespace(
        log=_Log(lag, **kwargs),
        settings=SimpleNamespace(merge_delay=1.0, witnesses=[]),
        continuity=SimpleNamespace(halted=halted),
    )


@pytest.mark.parametrize(("lag", "ok"), [(0.0, True), (0.999, True), (1.0, True), (1.5, False)])
async def test_a_lag_beyond_the_merge_delay_is_reported(lag: float, ok: bool) -> None:
    report = await access_log_status(_state(lag))  # type: ignore[arg-type]
    assert report == {
        "ok": ok,
        "size": 42,
        "queued": 3,
        "lagSeconds": round(lag, 3),
        "maxMergeDelaySeconds": 1.0,
    }


async def test_a_log_that_cannot_be_read_is_reported_by_kind() -> None:
    report = await access_log_status(_state(0.0, broken=True))  # type: ignore[arg-type]
    assert report == {"ok": False, "error": "ConnectionError"}


async def test_a_log_that_signs_nothing_says_why_and_what_is_missing() -> None:
    halted = LogBehindPublished("leaves 42 to 49 are missing", size=42, publishedSize=50)
    report = await access_log_status(_state(0.0, halted=halted))  # type: ignore[arg-type]
    assert report["ok"] is False
    assert report["halted"] == {
        "code": "LOG_BEHIND_PUBLISHED",
        "message": "leaves 42 to 49 are missing",
        "detail": {"size": 42, "publishedSize": 50},
    }
