"""`ClientRegistry.lookup`: what it never sends to the database, and a database that is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.admission import ClientRegistry
from gateway.errors import AuditUnavailable
from gateway.storage import create_engine, upgrade

CLIENT = "VN/GOV/CA-HN/cu-tru"


@pytest.mark.parametrize(
    ("client_id", "kid"),
    [
        ("VN/GOV/CA-HN/cu\x00tru", "ed-1"),
        (CLIENT, "ed\x00-1"),
        (CLIENT + "\n", "ed-1"),
        (CLIENT, "ed-\ud800"),
        ("someone", "ed-1"),
    ],
)
async def test_an_id_or_kid_the_registry_never_holds_is_not_looked_up(
    tmp_path: Path, client_id: str, kid: str
) -> None:
    # No database at all: a lookup that reached it would fail, not answer None.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gateway.db'}")
    try:
        assert await ClientRegistry(engine).lookup(client_id, kid) is None
    finally:
        await engine.dispose()


async def test_a_registry_that_cannot_be_read_is_audit_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'gateway.db'}")
    try:
        with pytest.raises(AuditUnavailable) as caught:
            await ClientRegistry(engine).lookup(CLIENT, "ed-1")
    finally:
        await engine.dispose()
    assert caught.value.http_status == 503


async def test_a_registered_shape_is_looked_up(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        await upgrade(engine)
        assert await ClientRegistry(engine).lookup(CLIENT, "ed-1") is None  # not registered
    finally:
        await engine.dispose()
