"""A record's id: 32 hex digits, as before, now a UUIDv7 whose order is its time's."""

from __future__ import annotations

import re
import uuid

from gateway.records._recorder import record_id


def test_record_ids_are_uuid7_in_the_order_they_are_made() -> None:
    ids = [record_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids), "an index keyed by the id would not grow at its end"
    assert len(set(ids)) == len(ids)
    made = uuid.UUID(hex=ids[0])
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
