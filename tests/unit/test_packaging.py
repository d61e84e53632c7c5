"""The project's packages: where they come from, their public API, vendored files."""

import ast
import hashlib
import importlib
import importlib.metadata
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[2]
DISTRIBUTION = "lienthong-gateway"
PACKAGES = ["connectors", "gateway", "keys", "policies", "sandbox", "schema"]
ROOMS = [
    f"gateway.{room}"
    for room in ("admission", "cli", "log", "notifications", "records", "storage", "web")
]
GRAPHIQL = ROOT / "gateway" / "web" / "static" / "graphiql"


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


OFFLINE_CORE = "lienthong_client.log"
"""The log's offline core, in the client library (client/): `keys` and `gateway.log`
re-export it as their own, the gateway signing and proving with the code clients check
with."""


def _own_public_names(package: ModuleType) -> set[str]:
    """Public names `__init__.py` defines or imports from its own package (or from the
    log's offline core)."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports of a lazy API
            todo.extend(node.body)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or module.startswith(package.__name__ + ".") or module == OFFLINE_CORE:
                names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {
        name
        for name in names
        if not name.startswith("_") and not isinstance(getattr(package, name, None), ModuleType)
    }


def _is_editable() -> bool:
    text = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    return bool(text and json.loads(text).get("dir_info", {}).get("editable"))


@pytest.mark.parametrize("name", PACKAGES)
def test_package_is_imported_from_this_project(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().is_relative_to(ROOT.resolve())


@pytest.mark.parametrize("name", PACKAGES)
def test_no_other_distribution_provides_the_package(name: str) -> None:
    providers = importlib.metadata.packages_distributions().get(name, [])
    if _is_editable():
        # An editable install records only its .pth file, so it is absent from the map;
        # any distribution that is there would shadow or be shadowed by this project.
        assert providers in ([], [DISTRIBUTION])
    else:
        assert providers == [DISTRIBUTION]


@pytest.mark.parametrize("name", PACKAGES + ROOMS)
def test_all_is_sorted(name: str) -> None:
    exported = list(getattr(importlib.import_module(name), "__all__", []))
    assert exported == sorted(exported, key=_isort_key)


@pytest.mark.parametrize("name", PACKAGES + ROOMS)
def test_all_is_complete(name: str) -> None:
    package = importlib.import_module(name)
    assert set(getattr(package, "__all__", [])) == _own_public_names(package)


@pytest.mark.parametrize("name", PACKAGES + ROOMS)
def test_every_name_in_all_exists(name: str) -> None:
    package = importlib.import_module(name)
    missing = [n for n in getattr(package, "__all__", []) if not hasattr(package, n)]
    assert missing == []


def _sums() -> list[tuple[str, str]]:
    lines = (GRAPHIQL / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return [(line.split()[1].lstrip("*"), line.split()[0]) for line in lines if line.strip()]


def test_sha256sums_cover_every_vendored_asset() -> None:
    assets = {p.name for p in GRAPHIQL.iterdir() if p.suffix in {".js", ".css"}}
    assert {name for name, _ in _sums()} == assets


@pytest.mark.parametrize(("name", "expected"), _sums())
def test_vendored_file_matches_its_sum(name: str, expected: str) -> None:
    assert hashlib.sha256((GRAPHIQL / name).read_bytes()).hexdigest() == expected
