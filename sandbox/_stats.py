"""Counts of lookup calls, so tests and benchmarks can see what reached a source."""

from collections.abc import Iterable
from typing import Any


class Stats:
    """Per-app counters behind ``GET /_sandbox/stats``.

    ``calls`` counts every call of each lookup route (errors included), ``ids_requested``
    the ids asked for (1 per single lookup, the length of ``danh_sach`` per batch), and
    ``fields_requested`` each valid field named in ``truong`` (nothing when it is absent).
    The apps run one worker on one event loop, so plain integers are enough.
    """

    def __init__(self, routes: Iterable[str]) -> None:
        self._routes = tuple(routes)
        self._calls: dict[str, int] = {}
        self._ids = 0
        self._fields: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Back to zero for every route."""
        self._calls = dict.fromkeys(self._routes, 0)
        self._ids = 0
        self._fields = {}

    def call(self, route: str) -> None:
        """One more call of ``route``."""
        self._calls[route] = self._calls.get(route, 0) + 1

    def ids(self, count: int) -> None:
        """``count`` more ids asked for."""
        self._ids += count

    def fields(self, names: Iterable[str]) -> None:
        """Each of ``names`` asked for once more."""
        for name in names:
            self._fields[name] = self._fields.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The body of ``GET /_sandbox/stats``."""
        return {
            "calls": dict(self._calls),
            "ids_requested": self._ids,
            "fields_requested": dict(sorted(self._fields.items())),
        }
