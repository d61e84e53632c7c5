"""Imports point downwards only, and the log's offline checks stand on their own.

Every import of the project's packages is read from the source (the module's whole
body: imports inside functions and under `TYPE_CHECKING` count too) and each module is
placed in its room. A module may import from its own room or from a room below it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]

# From the bottom up. A module belongs to the first room whose prefix it starts with,
# most specific first (see `_room`).
ROOMS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaves",
        (
            "gateway",
            "gateway.errors",
            "gateway.identifiers",
            "gateway.instants",
            "gateway.awaiting",
            "gateway.background",
            "gateway.tracing",
            "gateway.configfiles",
            "gateway.config",
            "gateway.logconfig",
        ),
    ),
    ("keys", ("keys",)),
    ("policies", ("policies",)),
    ("connectors", ("connectors",)),
    ("schema", ("schema",)),
    ("log core", ("gateway.log",)),
    ("storage", ("gateway.storage",)),
    (
        "log store",
        (
            "gateway.log.store",
            "gateway.log.sequencer",
            "gateway.log.witnessing",
            "gateway.log.continuity",
            "gateway.log.remote",
        ),
    ),
    ("records", ("gateway.records",)),
    ("notifications", ("gateway.notifications",)),
    ("admission", ("gateway.admission",)),
    ("state", ("gateway.state", "gateway.resources")),
    ("web", ("gateway.web",)),
    ("cli", ("gateway.cli", "gateway.__main__")),
]
RANK = {name: rank for rank, (name, _) in enumerate(ROOMS)}
PACKAGES = ("gateway", "keys", "policies", "connectors", "schema")
LOWER = ("keys", "policies", "connectors", "schema", "log core")
UPPER_ROOMS = ("web", "admission", "notifications", "records", "cli")


def _room(module: str) -> str:
    best, length = None, -1
    for name, prefixes in ROOMS:
        for prefix in prefixes:
            exact = module == prefix
            inside = module.startswith(prefix + ".") and prefix != "gateway"
            if (exact or inside) and len(prefix) > length:
                best, length = name, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no room: place it in ROOMS")
    return best


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or "static" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.add(module)
            # `from gateway import x` may name a submodule.
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in out if m.split(".")[0] in PACKAGES and m in MODULES}


def test_every_module_has_a_room() -> None:
    assert {_room(name) for name in MODULES} == set(RANK)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_downwards(name: str) -> None:
    room = _room(name)
    upwards = sorted(
        f"{imported} ({_room(imported)})"
        for imported in _imports(name, MODULES[name])
        if _room(imported) != room and RANK[_room(imported)] > RANK[room]
    )
    assert upwards == [], f"{name} ({room}) imports from rooms above it"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a schema module importing the consent store is caught."""
    source = tmp_path / "x.py"
    source.write_text("from gateway.records import ConsentStore\n", encoding="utf-8")
    imported = _imports("schema._x", source)
    assert imported == {"gateway.records"}
    assert RANK[_room("gateway.records")] > RANK[_room("schema._x")]


def test_lower_packages_and_the_log_core_use_no_room_above_them() -> None:
    # The acceptance rule, said directly: whatever the ranks above say.
    for name, path in MODULES.items():
        if _room(name) in LOWER:
            rooms = {_room(m) for m in _imports(name, path)}
            assert not rooms & set(UPPER_ROOMS), name


def test_the_offline_checks_load_neither_the_database_nor_the_web() -> None:
    script = (
        "import sys\n"
        "from gateway.log import verify_export, verify_tlog_proof\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'fastapi', 'starlette', 'strawberry', 'alembic', 'uvicorn'})\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
