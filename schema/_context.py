"""What resolvers get as `info.context`: one per GraphQL request."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors import BatchLoader, Connector, ConnectorRegistry, FetchContext

__all__ = ["RequestContext"]


@dataclass(slots=True)
class RequestContext:
    """Per-request state: who asks, the connectors, and the request's batch loaders."""

    registry: ConnectorRegistry
    fetch: FetchContext
    max_batch: int
    loaders: dict[tuple[str, str], BatchLoader] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        """The request id, as logged and sent to sources."""
        return self.fetch.request_id

    def loader(self, connector: Connector, kind: str) -> BatchLoader:
        """The request's loader for `kind` at `connector`, created on first use."""
        key = (connector.name, kind)
        loader = self.loaders.get(key)
        if loader is None:
            loader = self.loaders[key] = BatchLoader(connector, kind, self.fetch)
        return loader

    @property
    def source_calls(self) -> int:
        """How many batches this request sent to sources so far."""
        return sum(loader.calls for loader in self.loaders.values())
