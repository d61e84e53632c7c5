"""What resolvers get as `info.context`: one per GraphQL request.

The schema reaches the gateway's stores only through the protocols it defines here
(`ConsentRequests`, `RateLimit`); the gateway's application injects them, so nothing
in `schema/` imports a room of the gateway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

from connectors import BatchLoader, Connector, ConnectorRegistry, FetchContext
from gateway.errors import ClientNotAuthorised, PolicyDenied, PurposeNotAllowed, SubjectNotInCase
from gateway.instants import format_instant
from policies import AccessRequest, ActiveConsent, Allowed, Catalogue, Consent, Policy, Purpose

__all__ = [
    "EVIDENCE_KEPT",
    "Access",
    "ConsentRequests",
    "DecisionRecord",
    "Evidence",
    "RateLimit",
    "RequestContext",
    "Services",
    "SubjectDecision",
]

# Refusals that do not depend on the field: the whole entity is withheld.
_WHOLE_ENTITY = (ClientNotAuthorised, SubjectNotInCase)

EVIDENCE_KEPT: Final = 100
"""Items of one kind of evidence kept per source per request; the rest are counted."""
_EVIDENCE_MAX_CHARS: Final = 512
"""A longer item is counted, not kept: evidence is a hash or an id, never a body."""


class DecisionRecord(NamedTuple):
    """One decision taken for the access record (the subject stays in the personal part).

    A named tuple, not a frozen dataclass: one is made for every field of every subject
    a request decides, and a tuple is made in half the time.
    """

    subject: str
    path: str
    code: str
    reference: str | None

    def __repr__(self) -> str:  # the subject is a person's id: never in a repr
        return (
            f"DecisionRecord(path={self.path!r}, code={self.code!r}, reference={self.reference!r})"
        )


@dataclass(frozen=True, slots=True)
class SubjectDecision:
    """The decisions for the fields of one entity of one subject."""

    allowed: dict[str, Allowed]
    denied: dict[str, PolicyDenied]
    entity_error: PolicyDenied | None = None


@dataclass(slots=True)
class Access:
    """Who asks and why, and what has been decided for them in this request."""

    client_id: str
    agency_kinds: frozenset[str]
    purpose: Purpose
    policy: Policy
    consents: tuple[ActiveConsent, ...] = field(default=(), repr=False)
    consent_paths: frozenset[str] = frozenset()
    """The procedure's paths read by consent: deciding them needs the consents."""
    consent_loader: Callable[[], Awaitable[Sequence[ActiveConsent]]] | None = field(
        default=None, repr=False
    )
    _consents_loading: asyncio.Future[Sequence[ActiveConsent]] | None = field(
        default=None, repr=False
    )
    decisions: list[DecisionRecord] = field(default_factory=list, repr=False)
    _cache: dict[tuple[str, str], Allowed | PolicyDenied] = field(default_factory=dict, repr=False)
    _granted_by_law: Callable[[Purpose, frozenset[str], str], Allowed | None] | None = field(
        default=None, init=False, repr=False
    )
    _by_law: dict[tuple[str, frozenset[str]], tuple[tuple[str, str, Allowed | None], ...]] = field(
        default_factory=dict, init=False, repr=False
    )
    """By kind and fields asked: each field's path and the law's grant of it, for the
    subjects the case names (worked out once a request, not once a subject)."""

    def __post_init__(self) -> None:
        # The engine's grants by law, which hold for every subject the case names; any
        # other policy decides each field of each subject.
        self._granted_by_law = getattr(self.policy, "granted_by_law", None)

    async def prepare(self, kind: str, fields: Iterable[str]) -> None:
        """Load the consents in force, once, if any of these fields may need one.

        Most requests read only fields the law covers: they never query consents.
        """
        if self.consent_loader is None:
            return
        if any(f"{kind}.{name}" in self.consent_paths for name in fields):
            # Root fields resolve concurrently: the first starts the lookup, all await it.
            if self._consents_loading is None:
                self._consents_loading = asyncio.ensure_future(self.consent_loader())
            self.consents = tuple(await self._consents_loading)

    def decide_one(self, subject: str, path: str) -> Allowed | PolicyDenied:
        """The decision for one canonical path of one subject (recorded once)."""
        key = (subject, path)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        outcome: Allowed | PolicyDenied | None = None
        if self._granted_by_law is not None and subject in self.purpose.subjects:
            outcome = self._granted_by_law(self.purpose, self.agency_kinds, path)
        if outcome is None:
            request = AccessRequest(
                client_id=self.client_id,
                agency_kinds=self.agency_kinds,
                purpose=self.purpose,
                subject=subject,
                path=path,
                consents=self.consents,
            )
            try:
                allowed = self.policy.check(request)
                outcome = allowed if allowed is not None else _nothing_grants(path)
            except PolicyDenied as exc:
                outcome = exc
        self._keep(subject, path, outcome)
        return outcome

    def _keep(self, subject: str, path: str, outcome: Allowed | PolicyDenied) -> None:
        """Remember `outcome` for the request and record it, once per subject and path."""
        self._cache[subject, path] = outcome
        reference = outcome.reference if isinstance(outcome, Allowed) else None
        self.decisions.append(DecisionRecord(subject, path, outcome.code, reference))

    def _paths(
        self, kind: str, subject: str, fields: Iterable[str]
    ) -> Iterable[tuple[str, str, Allowed | None]]:
        """Each field's name and path, with the law's grant where it holds for `subject`."""
        granted_by_law = self._granted_by_law
        if (
            granted_by_law is None
            or not isinstance(fields, frozenset)
            or subject not in self.purpose.subjects
        ):
            return [(name, f"{kind}.{name}", None) for name in fields]
        key = (kind, fields)
        plan = self._by_law.get(key)
        if plan is None:
            paths = ((name, f"{kind}.{name}") for name in fields)
            plan = self._by_law[key] = tuple(
                (name, path, granted_by_law(self.purpose, self.agency_kinds, path))
                for name, path in paths
            )
        return plan

    def decide(self, kind: str, subject: str, fields: Iterable[str]) -> SubjectDecision:
        """Decide every field of `kind` asked for `subject`."""
        allowed: dict[str, Allowed] = {}
        denied: dict[str, PolicyDenied] = {}
        for name, path, by_law in self._paths(kind, subject, fields):
            if by_law is not None and (subject, path) not in self._cache:
                # Granted by law, as `decide_one` would decide and record it.
                self._keep(subject, path, by_law)
                allowed[name] = by_law
                continue
            outcome = self.decide_one(subject, path)
            if isinstance(outcome, Allowed):
                allowed[name] = outcome
            else:
                if isinstance(outcome, _WHOLE_ENTITY):
                    return SubjectDecision({}, {}, outcome)
                denied[name] = outcome
        return SubjectDecision(allowed, denied)


def _nothing_grants(path: str) -> PolicyDenied:
    return PurposeNotAllowed(field=path)


class ConsentRequests(Protocol):
    """Consents as a client's request reaches them: ask for one, read one."""

    async def get(self, consent_id: str) -> Consent:
        """The consent, or `NotFound`."""
        ...

    async def request(
        self,
        *,
        subject: str,
        consumer: str,
        procedure: str,
        fields: Sequence[str],
        case: str,
        valid_until: datetime.datetime,
        request_id: str,
    ) -> Consent:
        """Record a request for the citizen to answer (and its `consent` event)."""
        ...


class RateLimit(Protocol):
    """A limit of requests a minute per name."""

    async def check(self, name: str) -> None:
        """Count one hit for `name`; raise `RateLimited` once it is over the limit."""
        ...


@dataclass(frozen=True, slots=True)
class Services:
    """What resolvers beyond plain reads need: the catalogue, consents, their limit."""

    catalogue: Catalogue
    consents: ConsentRequests
    consent_requests: RateLimit
    """Consent requests a minute per client."""


@dataclass(slots=True)
class Evidence:
    """What sources gave as evidence of the calls made for one request (an X-Road
    security server's request hashes), for the personal part of its access record.

    Connectors add to it through `FetchContext.evidence` (`connectors.EvidenceSink`).
    It stays small whatever a request does: at most `limit` items of a kind per source,
    in the order they were added; the others are counted. Items may be hashes of
    requests naming people, so they go to the sealed personal part only: never to the
    envelope, a log line or a metric.
    """

    limit: int = EVIDENCE_KEPT
    _kept: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)
    _omitted: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    def add(self, source: str, kind: str, value: str) -> None:
        """Keep `value` after the others of `kind` from `source`, or count it."""
        kept = self._kept.get(source, {}).get(kind, [])
        if len(kept) < self.limit and len(value) <= _EVIDENCE_MAX_CHARS:
            self._kept.setdefault(source, {}).setdefault(kind, kept).append(value)
            return
        omitted = self._omitted.setdefault(source, {})
        omitted[kind] = omitted.get(kind, 0) + 1

    def __bool__(self) -> bool:
        return bool(self._kept) or bool(self._omitted)

    def recorded(self) -> dict[str, dict[str, Any]]:
        """Per source, its kinds of evidence in the order they came, and `omitted`: how
        many of a kind were not kept (only when some were not)."""
        out: dict[str, dict[str, Any]] = {}
        for source in sorted({*self._kept, *self._omitted}):
            entry: dict[str, Any] = {k: list(v) for k, v in self._kept.get(source, {}).items()}
            if source in self._omitted:
                entry["omitted"] = dict(self._omitted[source])
            out[source] = entry
        return out


@dataclass(slots=True)
class RequestContext:
    """Per-request state: who asks, the connectors, and the request's batch loaders."""

    registry: ConnectorRegistry
    fetch: FetchContext
    max_batch: int
    access: Access
    services: Services | None = None
    loaders: dict[tuple[str, str, str | None], BatchLoader] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    """Changes the request made (a consent requested), for its access record."""
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)
    served: dict[str, set[str]] = field(default_factory=dict, repr=False)
    """Per subject, the top-level paths (`Citizen.fullName`) a source answered."""
    evidence: Evidence = field(default_factory=Evidence, repr=False)
    """What sources gave as evidence of this request's calls, for its access record."""
    versions: Mapping[str, int] = field(default_factory=dict)
    """Each connector's version in the registry serving the request, by name."""
    _entries: dict[tuple[str, datetime.datetime, str, str], dict[str, Any]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        # Every call made for the request hands its evidence to this request's record.
        self.fetch = dataclasses.replace(self.fetch, evidence=self.evidence)

    @property
    def request_id(self) -> str:
        """The request id, as logged and sent to sources."""
        return self.fetch.request_id

    def loader(self, connector: Connector, kind: str, by: str | None = None) -> BatchLoader:
        """The request's loader for `kind` at `connector` (lists `by` another key)."""
        key = (connector.name, kind, by)
        loader = self.loaders.get(key)
        if loader is None:
            loader = self.loaders[key] = BatchLoader(connector, kind, self.fetch, by=by)
        return loader

    def source_versions(self) -> dict[str, int]:
        """The version of each source that answered, by name (for the access record)."""
        return {s: self.versions[s] for s in sorted(self.sources) if s in self.versions}

    @property
    def source_calls(self) -> int:
        """How many batches this request sent to sources so far."""
        return sum(loader.calls for loader in self.loaders.values())

    def note_served(self, subject: str, paths: Iterable[str]) -> None:
        """Note the paths served for `subject` (for the figures and papers avoided)."""
        found = set(paths)
        if found:
            self.served.setdefault(subject, set()).update(found)

    def note_provenance(
        self, path: str, *, source: str, retrieved_at: datetime.datetime, allowed: Allowed
    ) -> None:
        """Record where the value at response `path` came from and why it was released.

        Paths of one origin (source, call, ground) share one entry: a batch of subjects
        read by one call under one law is one entry for each field, not one per value.
        Entries are never changed once noted.
        """
        key = (source, retrieved_at, allowed.basis, allowed.reference)
        entry = self._entries.get(key)
        if entry is None:
            self.sources.add(source)
            entry = {"source": source}
            version = self.versions.get(source)
            if version is not None:
                # Which mapping of the source produced the value.
                entry["version"] = version
            entry |= {
                "retrievedAt": format_instant(retrieved_at),
                "basis": allowed.basis,
            }
            entry["legalBasis" if allowed.basis == "law" else "consentId"] = allowed.reference
            self._entries[key] = entry
        self.provenance[path] = entry
