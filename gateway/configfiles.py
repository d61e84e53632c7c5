"""Configuration files (YAML or JSON) read into validated models.

Connector manifests and the procedure catalogue are data written by people. A file
that is wrong must stop start-up with the file, the line and the field, so reading
goes through one place: `load_config_file`. A leaf module: it imports nothing of the
project, so every package may use it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = ["ConfigFileError", "config_files", "line_of", "load_config_file"]

M = TypeVar("M", bound=BaseModel)

SUFFIXES = frozenset({".yaml", ".yml", ".json"})
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (ten times faster), else PyYAML's."""


class ConfigFileError(ValueError):
    """A configuration file that cannot be used; says which file and line."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


def _node_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest ancestor."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return line
            # The key's line: a block under it starts on the line after.
            key, node = pair
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _parse(path: Path, error: type[ConfigFileError]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise error(path, "not UTF-8 text") from exc
    try:
        if path.suffix == ".json":
            return orjson.loads(text)
        return yaml.load(text, Loader=_LOADER)  # noqa: S506  # nosec B506 - a safe loader
    except orjson.JSONDecodeError as exc:
        raise error(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(path, f"not valid YAML: {exc}", line=line) from exc


def line_of(path: Path, loc: tuple[int | str, ...]) -> int | None:
    """The line of `loc` (a path of keys) in the YAML or JSON file at `path`.

    For errors found after loading (a column missing from the reflected database, a
    field the canonical schema lacks): the file is read again, which is cheap.
    """
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return _node_line(node, loc)


def load_config_file(
    path: Path,
    model: type[M] | TypeAdapter[Any],
    *,
    error: type[ConfigFileError] = ConfigFileError,
    what: str = "document",
    ignore_loc: Collection[str] = (),
) -> Any:
    """Read `path` and validate it as `model`; raise `error` naming the file and line.

    Top-level keys starting with `x-` belong to the author (shared YAML anchors,
    notes) and are not read. `ignore_loc` lists names that pydantic puts in error
    locations without being keys of the document (union tags).
    """
    data = _parse(path, error)
    if not isinstance(data, dict):
        raise error(path, f"a {what} is a mapping", line=1)
    data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "unknown_kind":  # a union's tag: point at the key holding it
            first["loc"] = ("kind", *first["loc"])
        loc = tuple(
            p for p in first["loc"] if p not in ignore_loc and not str(p).startswith("function-")
        )
        where = ".".join(str(p) for p in loc) or "(top)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        # The file's nodes are composed again only now, for the line of the error.
        raise error(path, f"{where}: {first['msg']}{more}", line=line_of(path, loc)) from exc


def config_files(directory: Path, *, error: type[ConfigFileError] = ConfigFileError) -> list[Path]:
    """The YAML and JSON files directly in `directory`, sorted by name."""
    if not directory.is_dir():
        raise error(directory, "no such directory")
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
