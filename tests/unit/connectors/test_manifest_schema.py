"""The JSON Schema agencies validate manifests with in their editors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from connectors import SCHEMA_PATH, manifest_schema_text

SANDBOX_MANIFESTS = Path(__file__).parents[3] / "sandbox" / "manifests"


def _validator() -> jsonschema.Draft202012Validator:
    schema = orjson.loads(SCHEMA_PATH.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_checked_in_schema_is_current() -> None:
    if SCHEMA_PATH.read_text(encoding="utf-8") != manifest_schema_text():
        raise AssertionError(f"{SCHEMA_PATH} is stale: run `gateway connectors schema`")


@pytest.mark.parametrize("path", sorted(SANDBOX_MANIFESTS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_sandbox_manifests_are_valid_by_the_schema(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = list(_validator().iter_errors(document))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "soap"},
        {"timeout_seconds": -1},
        {"auth": {"type": "api_key", "key": "written-inline"}},
        {"database": {"url": "sqlite:///x.db", "password": "hunter2"}},
        {"surprise": True},
    ],
)
def test_the_schema_refuses_what_loading_refuses(change: dict[str, Any]) -> None:
    document = yaml.safe_load((SANDBOX_MANIFESTS / "population.yaml").read_text("utf-8"))
    if "database" in change:
        document = yaml.safe_load((SANDBOX_MANIFESTS / "land.yaml").read_text("utf-8"))
    document.update(change)
    assert list(_validator().iter_errors(document))
