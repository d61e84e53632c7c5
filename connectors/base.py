"""The connector protocol: how the gateway reads one agency's database.

A connector answers lookups for canonical entity kinds (`Citizen`, `Business`, ...)
by key, for a set of canonical top-level fields, in batches. It maps the source's own
field names to canonical ones itself, so everything above it speaks only the canonical
schema. Kinds (`rest`, `sql`, `xroad`, `graphql`) are plug-ins registered under the
entry-point group `gateway.connectors`; each is a `ConnectorFactory`.

An entity may be read in several ways: by its own key (one or a batch of keys), and as
a list by another key (`by="holder"`: the parcels or documents a person holds).

A connector whose source answers with evidence of a call (an X-Road security server's
`X-Road-Request-Hash`) hands it to the request's `FetchContext.evidence`; the gateway
keeps it in the request's access record. Connectors know nothing of the records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from policies import Purpose

if TYPE_CHECKING:
    import httpx

    from connectors._manifest import ManifestBase

__all__ = [
    "Connector",
    "ConnectorFactory",
    "EvidenceSink",
    "FetchContext",
    "FetchResult",
    "Health",
    "Record",
]

Record: TypeAlias = Mapping[str, Any]
"""One entity in canonical field names. A value may be an exception instance: the
field could not be read or mapped, and GraphQL reports that exception on the field."""

FetchResult: TypeAlias = Record | Sequence[Record] | None
"""A record, a list of records for kinds looked up by holder, or `None`: not found."""


class EvidenceSink(Protocol):
    """Where a connector puts evidence of the calls it made for one gateway request."""

    def add(self, source: str, kind: str, value: str) -> None:
        """Keep `value`, one item of evidence of `kind` (`xroadRequestHashes`) from the
        connector `source`, after those added before. It may be personal data (a hash of
        a request naming a person): never log it."""
        ...


@dataclass(frozen=True, slots=True)
class FetchContext:
    """Who is asking and why; sent to the source as X-Road style headers.

    `client_id` is the calling system (`X-Road-Client`); the purpose gives the officer
    (`X-Road-UserId`) and the case (`X-Road-Issue`).
    """

    request_id: str
    client_id: str | None = None
    purpose: Purpose | None = None
    deadline: float | None = None
    """When the request's calls to sources must end, in the event loop's clock
    (`loop.time()`): its deadline less the time kept to record it. `None`: none."""
    evidence: EvidenceSink | None = field(default=None, compare=False, repr=False)
    """Where evidence of the calls made for the request goes (its access record);
    `None`: nowhere (a health check, a command-line lookup)."""


@dataclass(frozen=True, slots=True)
class Health:
    """A connector's own view of its source."""

    ok: bool
    detail: str = ""
    latency_ms: float | None = None


@runtime_checkable
class Connector(Protocol):
    """Reads canonical entities from one source."""

    name: str

    async def fetch(
        self,
        kind: str,
        keys: Sequence[str],
        fields: frozenset[str],
        ctx: FetchContext,
        *,
        by: str | None = None,
    ) -> Mapping[str, FetchResult]:
        """Look up `keys` of `kind`, reading at least `fields` (canonical, top level).

        With `by` (a list way of the manifest, `holder`), each key is another key and
        its entry a list of records. Returns an entry per key found (keys not found may
        be absent or `None`). Raises `gateway.errors.SourceError` when the source as a
        whole failed.
        """
        ...

    async def open(self) -> None:
        """Make ready what needs the source (a database's schema is read and checked).

        Raises `ManifestError` when the source does not have what the manifest names.
        """
        ...

    async def health(self) -> Health:
        """Ask the source whether it answers."""
        ...

    async def aclose(self) -> None:
        """Release what the connector holds (it does not own the injected client)."""
        ...


class ConnectorFactory(Protocol):
    """Builds a connector of one kind from its validated manifest."""

    def __call__(self, manifest: ManifestBase, *, http: httpx.AsyncClient) -> Connector: ...
