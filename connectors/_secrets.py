"""Secrets by reference: a manifest names a secret, a provider reads it.

`{ref: "env:SOURCE_NAME"}` reads the environment variable `SOURCE_NAME` (only names
starting `SOURCE_`); `{ref: "file:PATH"}` reads a file in the manifest's folder, without
its final line break. A manifest so names only secrets meant for sources, never the
gateway's own settings, keys or database (`connectors._manifest.SecretRef` checks).
A later provider (a stored, encrypted one) registers in `PROVIDERS` the same way.

The value is held by a `Secret`, whose `repr` and `str` show only the reference: it
never reaches a log line, an error, a metric or a record by accident. Code that needs
the value asks for it with `reveal()`, at the moment it is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from connectors._manifest import ManifestBase, SecretRef

__all__ = ["PROVIDERS", "Secret", "SecretUnavailable", "resolve", "resolve_secret"]


class SecretUnavailable(LookupError):
    """A secret reference that no provider could read; says which, never a value."""


class Secret:
    """A secret's value, kept out of `repr`, `str` and comparisons by accident."""

    __slots__ = ("_value", "ref")

    def __init__(self, ref: str, value: str) -> None:
        self.ref = ref
        self._value = value

    def reveal(self) -> str:
        """The value, to send it; never log or store what this returns."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(ref={self.ref!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled")


def _from_env(name: str, _base: Path | None) -> str:
    value = os.environ.get(name)
    if value is None:
        raise SecretUnavailable(f"the environment variable {name} is not set")
    if not value:
        raise SecretUnavailable(f"the environment variable {name} is empty")
    return value


def _from_file(name: str, base: Path | None) -> str:
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        value = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretUnavailable(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretUnavailable(f"{path} is not UTF-8 text") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretUnavailable(f"{path} is empty")
    return value


PROVIDERS: Final[dict[str, Callable[[str, Path | None], str]]] = {
    "env": _from_env,
    "file": _from_file,
}
"""Secret providers by the prefix of a reference."""


def resolve(ref: SecretRef, *, base: Path | None = None) -> Secret:
    """Read the secret `ref` names; raise `SecretUnavailable` saying why not."""
    provider = PROVIDERS.get(ref.provider)
    if provider is None:
        raise SecretUnavailable(f"no secret provider {ref.provider!r}")
    return Secret(ref.ref, provider(ref.name, base))


def resolve_secret(manifest: ManifestBase, loc: tuple[str | int, ...], ref: SecretRef) -> Secret:
    """Read a secret of `manifest` at `loc`; a `ManifestError` naming file, line, field."""
    base = manifest.path.parent if manifest.path is not None else None
    try:
        return resolve(ref, base=base)
    except SecretUnavailable as exc:
        raise manifest.error(loc, f"secret {ref.ref!r}: {exc}") from None
