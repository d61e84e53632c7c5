"""What an audit of the log checked, and the first problem it found."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Report"]


@dataclass
class Report:
    """What was checked, and the first problem found (if any)."""

    checked: list[str] = field(default_factory=list)
    problem: str | None = None
    bad_index: int | None = None
    configuration: bool = False
    """The problem is that the log was checked with another configuration than its own
    (origin, keys): nothing was found wrong with the log itself."""

    @property
    def ok(self) -> bool:
        """No problem found."""
        return self.problem is None

    def fail(
        self, problem: str, index: int | None = None, *, configuration: bool = False
    ) -> Report:
        """Record the first problem (later ones are ignored)."""
        if self.problem is None:
            self.problem, self.bad_index = problem, index
            self.configuration = configuration
        return self
