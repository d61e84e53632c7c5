"""Provenance grouped by origin, when the client asks for it: the same facts, fewer bytes."""

from __future__ import annotations

from typing import Any

import pytest

QUERY = (
    "query($ids: [String!]!) { citizens(personalIds: $ids) "
    "{ personalId fullName birthDate gender permanentResidence { provinceName wardName } } }"
)


async def _ask(gateway: Any, ids: list[str], extensions: Any = None) -> Any:
    body: dict[str, Any] = {"query": QUERY, "variables": {"ids": ids}}
    if extensions is not None:
        body["extensions"] = extensions
    async with gateway.client() as http:
        return await http.post(
            "/graphql", json=body, headers={"Accept": "application/graphql-response+json"}
        )


def _without_time(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in {"retrievedAt", "paths"}}


async def test_compact_provenance_keeps_every_fact_in_fewer_bytes(gateway, dataset) -> None:
    ids = list(dataset.sample.citizens)  # this test's own people: eight
    full = await _ask(gateway, ids)
    compact = await _ask(gateway, ids, {"provenance": "compact"})
    assert full.status_code == compact.status_code == 200, (full.text, compact.text)
    assert full.json()["data"] == compact.json()["data"]
    by_path = full.json()["extensions"]["provenance"]
    groups = compact.json()["extensions"]["provenance"]
    assert isinstance(groups, list)
    # Every path once, with its own source, version and ground.
    expanded = {path: group for group in groups for path in group["paths"]}
    assert sum(len(g["paths"]) for g in groups) == len(expanded) == len(by_path)
    assert set(expanded) == set(by_path)
    for path, entry in by_path.items():
        assert _without_time(expanded[path]) == _without_time(entry), path
        assert "retrievedAt" in expanded[path]
    assert len(groups) < len(by_path)
    assert len(compact.content) < len(full.content) * 0.7, (len(compact.content), len(full.content))
    # The receipt is there in both.
    assert "receipt" in compact.json()["extensions"]


@pytest.mark.parametrize("extensions", [{"provenance": "short"}, ["compact"], "compact"])
async def test_a_wrong_provenance_request_is_refused(gateway, dataset, extensions: Any) -> None:
    ids = list(dataset.sample.citizens)[:1]
    answer = await _ask(gateway, ids, extensions)
    assert answer.status_code == 400, answer.text
    assert "data" not in answer.json()


async def test_full_provenance_is_the_default_and_may_be_asked(gateway, dataset) -> None:
    ids = list(dataset.sample.citizens)[:1]
    answer = await _ask(gateway, ids, {"provenance": "full", "other": 1})
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["extensions"]["provenance"], dict)
