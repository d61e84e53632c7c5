"""Secrets by reference: a manifest names a secret, a provider reads it.

`{ref: "env:SOURCE_NAME"}` reads the environment variable `SOURCE_NAME` (only names
starting `SOURCE_`); `{ref: "file:PATH"}` reads a file in the manifest's folder, without
its final line break. A manifest so names only secrets meant for sources, never the
gateway's own settings, keys or database (`connectors._manifest.SecretRef` checks).

`{ref: "stored:NAME"}` reads the secret `NAME` stored for the manifest's own connector.
The gateway stores them encrypted and opens them before it builds the registry; what
reaches this package is plain values, `{(connector, name): value}` or a function of
`(connector, name)`, given to `build_registry(stored_secrets=...)`, which binds each
manifest to its own (`with_stored_secrets`). A stored reference with no value stored
is a `ManifestError` naming the field, as an unset environment variable is.

The value is held by a `Secret`, whose `repr` and `str` show only the reference: it
never reaches a log line, an error, a metric or a record by accident. Code that needs
the value asks for it with `reveal()`, at the moment it is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, TypeAlias, TypeVar

from pydantic import BaseModel

from connectors._manifest import ManifestBase, SecretRef

__all__ = [
    "PROVIDERS",
    "STORED",
    "Secret",
    "SecretUnavailable",
    "StoredSecrets",
    "resolve",
    "resolve_secret",
    "stored_refs",
    "with_stored_secrets",
]

STORED: Final = "stored"
"""The provider of secrets stored (encrypted) for a connector: `stored:NAME`."""

StoredSecrets: TypeAlias = Mapping[tuple[str, str], str] | Callable[[str, str], str | None]
"""Stored secrets' plain values by (connector, secret name), or a function giving them."""

M = TypeVar("M", bound=ManifestBase)


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
    if ref.provider == STORED:
        raise SecretUnavailable("a stored secret is read for its connector (resolve_secret)")
    provider = PROVIDERS.get(ref.provider)
    if provider is None:
        raise SecretUnavailable(f"no secret provider {ref.provider!r}")
    return Secret(ref.ref, provider(ref.name, base))


class _Stored:
    """One connector's stored secrets; shows no value, survives a manifest's copies."""

    __slots__ = ("_connector", "_values")

    def __init__(self, connector: str, values: StoredSecrets) -> None:
        self._connector = connector
        self._values = values

    def get(self, name: str) -> str | None:
        if callable(self._values):
            return self._values(self._connector, name)
        return self._values.get((self._connector, name))

    def __repr__(self) -> str:
        return f"StoredSecrets(connector={self._connector!r})"

    def __deepcopy__(self, _memo: object) -> _Stored:
        return self

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("stored secrets are not pickled")


def with_stored_secrets(manifest: M, stored: StoredSecrets) -> M:
    """A copy of `manifest` whose `stored:` references read `stored` (its connector's own)."""
    copy = manifest.model_copy()
    copy._path = manifest._path
    copy._stored_secrets = _Stored(manifest.name, stored)
    return copy


def _from_store(manifest: ManifestBase, name: str) -> str:
    stored = manifest._stored_secrets
    value = stored.get(name) if isinstance(stored, _Stored) else None
    if not value:
        raise SecretUnavailable(
            f"no value is stored for connector {manifest.name!r} "
            f"(PUT /admin/connectors/{manifest.name}/secrets/{name})"
        )
    return value


def resolve_secret(manifest: ManifestBase, loc: tuple[str | int, ...], ref: SecretRef) -> Secret:
    """Read a secret of `manifest` at `loc`; a `ManifestError` naming file, line, field."""
    base = manifest.path.parent if manifest.path is not None else None
    try:
        if ref.provider == STORED:
            return Secret(ref.ref, _from_store(manifest, ref.name))
        return resolve(ref, base=base)
    except SecretUnavailable as exc:
        raise manifest.error(loc, f"secret {ref.ref!r}: {exc}") from None


Loc: TypeAlias = tuple[str | int, ...]


def stored_refs(value: object, loc: Loc = ()) -> list[tuple[Loc, SecretRef]]:
    """Every `stored:` reference in a manifest (or a part of one), with where it is."""
    found: list[tuple[Loc, SecretRef]] = []
    if isinstance(value, SecretRef):
        if value.provider == STORED:
            found.append(((*loc, "ref"), value))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found.extend(stored_refs(getattr(value, name), (*loc, name)))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found.extend(stored_refs(item, (*loc, str(key))))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(stored_refs(item, (*loc, index)))
    return found
