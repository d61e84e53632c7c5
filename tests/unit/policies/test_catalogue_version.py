"""`Catalogue.version`: the SHA-256 of the canonical catalogue, recorded with decisions."""

import hashlib
import json
import shutil
from pathlib import Path

import orjson
import pytest
import yaml

from policies import CATALOGUE_DIR, Catalogue, load_catalogue

FILES = sorted(p.name for p in CATALOGUE_DIR.iterdir() if p.suffix in {".yaml", ".yml", ".json"})


@pytest.fixture(scope="module")
def shipped() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    directory = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE_DIR, directory)
    return directory


def _independent_version(catalogue: Catalogue) -> str:
    # RFC 8785 for data without floats is JSON with sorted keys, no spaces and UTF-8
    # text; entries go in code order.
    entries = [
        catalogue.procedures[code].model_dump(mode="json") for code in sorted(catalogue.procedures)
    ]
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_version_is_lowercase_hex_sha256(shipped: Catalogue) -> None:
    version = shipped.version
    assert len(version) == 64
    assert version == version.lower()
    int(version, 16)


def test_version_is_stable_across_loads(shipped: Catalogue, copy: Path) -> None:
    assert load_catalogue().version == shipped.version == load_catalogue(copy).version


def test_version_equals_an_independent_computation(shipped: Catalogue) -> None:
    assert shipped.version == _independent_version(shipped)


def test_version_does_not_depend_on_file_names_or_format(shipped: Catalogue, copy: Path) -> None:
    before = shipped.version
    first = copy / FILES[0]
    data = yaml.safe_load(first.read_text(encoding="utf-8"))
    first.unlink()
    # Same entry as JSON, keys reversed, under another name, with defaults spelled out.
    data = dict(reversed(list(data.items())))
    data.setdefault("hidden_access_allowed", False)
    (copy / "zz-renamed.json").write_bytes(orjson.dumps(data))
    assert load_catalogue(copy).version == before


@pytest.mark.parametrize("name", FILES)
def test_version_changes_when_any_entry_changes(shipped: Catalogue, copy: Path, name: str) -> None:
    path = copy / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["hidden_access_allowed"] = not data.get("hidden_access_allowed", False)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    after = load_catalogue(copy)
    assert after.version != shipped.version
    assert after.version == _independent_version(after)


def test_version_changes_when_a_label_changes(shipped: Catalogue, copy: Path) -> None:
    before = shipped.version
    path = copy / FILES[0]
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('en: "', 'en: "The ', 1), encoding="utf-8")
    assert load_catalogue(copy).version != before


def test_version_changes_when_an_entry_is_removed(shipped: Catalogue, copy: Path) -> None:
    before = shipped.version
    (copy / FILES[-1]).unlink()
    assert load_catalogue(copy).version != before
