"""Cases confirmed by the dossier registry, not asserted by the caller.

A client states its case in the token it signs (`purpose.case`), and the subjects it
names there. For a procedure whose catalogue entry says `case_confirmation: required`
or `optional`, the case is looked up as a dossier code at the dossier registry (the
procedure-handling system of the one-stop shop), through whichever connector serves
the canonical `Dossier` kind, before anything is decided. The dossier confirms the
case when it

1. exists (`NO_SUCH_DOSSIER`),
2. is a dossier of the request's procedure (`OTHER_PROCEDURE`; a province's variant
   `1.004222.H26` is a dossier of `1.004222`),
3. was received by, or assigned to, the client's organisation (`OTHER_ORGANISATION`;
   a client `VN/GOV/<org>/<system>` is of `VN/GOV/<org>`: one-stop desks receive
   dossiers for other agencies), and
4. is open: received or in progress (`DOSSIER_CLOSED`).

A dossier the registry answered with limits the subjects to the persons it names:
another subject's fields are withheld as `SUBJECT_NOT_IN_CASE`, field by field, as for
a subject the purpose does not name. The first failed check refuses a `required` procedure's request
(`CASE_NOT_CONFIRMED`, naming the check and nothing of the dossier's persons); an
`optional` one proceeds on the subjects as stated, and its record says why it was not
confirmed. When no registry answers (none is configured, it fails, times out or its
breaker is open), a `required` request fails closed (`CASE_REGISTRY_UNAVAILABLE`, 503)
and an `optional` one proceeds, recorded as not confirmed.

A dossier found is kept for `ttl` seconds (a dossier not found, or a failure, is not
kept): a case's requests within that time cost no lookup, and a dossier closed
meanwhile is seen closed at most `ttl` seconds late. The record keeps the check, the
dossier's status and a keyed digest of the registry's answer (`caseConfirmation` in
the envelope: an HMAC under the gateway's pseudonym key, so that whoever holds the
dossier cannot find its records by hashing it); the answer itself goes to the sealed
personal part, naming only the persons the record names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final

import structlog

from connectors import Connector, ConnectorRegistry, FetchContext, deadline_scope
from gateway.errors import CaseNotConfirmed, CaseRegistryUnavailable, GatewayError
from gateway.log import canonical_json
from policies import OPEN_STATUSES, CaseConfirmation, DossierStatus, Purpose
from schema import Dossier, DossierPerson, build, connector_fields

log = structlog.get_logger(__name__)

__all__ = [
    "CHECKED_FIELDS",
    "DOSSIER_FIELDS",
    "CaseCheck",
    "Cases",
    "Confirmation",
    "client_organisation",
    "same_procedure",
]

DOSSIER_KIND: Final = "Dossier"
DOSSIER_FIELDS: Final = frozenset(connector_fields()[DOSSIER_KIND])
"""Every canonical field of a dossier: the checks read some, the record keeps all."""
CHECKED_FIELDS: Final = frozenset(
    {"procedureCode", "receivingOrganisation", "handlingOrganisations", "status", "persons"}
)
"""What the checks read: one connector must serve them all."""
_NATIONAL: Final = re.compile(r"(\d\.\d{6})(\.[A-Z][A-Z0-9]{1,9})?")


class CaseCheck(StrEnum):
    """A check a dossier failed, or why none could be made."""

    NO_SUCH_DOSSIER = "NO_SUCH_DOSSIER"
    OTHER_PROCEDURE = "OTHER_PROCEDURE"
    OTHER_ORGANISATION = "OTHER_ORGANISATION"
    DOSSIER_CLOSED = "DOSSIER_CLOSED"
    NO_REGISTRY = "NO_REGISTRY"
    """No active connector serves dossiers."""
    REGISTRY_UNAVAILABLE = "REGISTRY_UNAVAILABLE"
    """The registry failed, timed out, or answered what is not a dossier."""

    @property
    def about_dossier(self) -> bool:
        """A check of the dossier itself (the registry answered), not of the registry."""
        return self not in (CaseCheck.NO_REGISTRY, CaseCheck.REGISTRY_UNAVAILABLE)


_MESSAGES: Final = {
    CaseCheck.NO_SUCH_DOSSIER: "The dossier registry has no dossier with this case's code.",
    CaseCheck.OTHER_PROCEDURE: "The case's dossier is for another procedure.",
    CaseCheck.OTHER_ORGANISATION: (
        "The case's dossier was neither received by nor assigned to the client's organisation."
    ),
    CaseCheck.DOSSIER_CLOSED: "The case's dossier is closed (returned, done or cancelled).",
}


def client_organisation(client_id: str) -> str:
    """The organisation `VN/GOV/<org>` of a client `VN/GOV/<org>/<system>`."""
    return "/".join(client_id.split("/")[:3])


def same_procedure(dossier_code: str, procedure: str) -> bool:
    """Whether a dossier's procedure code is the request's procedure.

    Equal codes are; a national code and a province's variant of it (`1.004222` and
    `1.004222.H26`) are too, but two provinces' variants are not each other's.
    """
    if dossier_code == procedure:
        return True
    ours, theirs = _NATIONAL.fullmatch(procedure), _NATIONAL.fullmatch(dossier_code)
    if ours is None or theirs is None or ours.group(1) != theirs.group(1):
        return False
    return ours.group(2) is None or theirs.group(2) is None


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the registry answered about one dossier code."""

    registry: str
    dossier: Dossier
    answer: dict[str, Any] = field(repr=False)
    answer_hash: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What the dossier registry said of a request's case, as its record keeps it."""

    requirement: CaseConfirmation
    check: CaseCheck | None
    """The first check the dossier failed, or why none was made; `None`: confirmed."""
    registry: str | None = None
    status: str | None = None
    """The dossier's status, when the registry answered with one."""
    answer_hash: str | None = None
    """HMAC-SHA256 (the gateway's pseudonym key) of the RFC 8785 JSON of the answer."""
    answer: dict[str, Any] | None = field(default=None, repr=False)
    """The registry's answer (personal data: the dossier's persons)."""
    persons: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def confirmed(self) -> bool:
        return self.check is None

    def envelope(self) -> dict[str, Any]:
        """`caseConfirmation` of the envelope: no personal data."""
        out: dict[str, Any] = {
            "requirement": self.requirement.value,
            "confirmed": self.confirmed,
        }
        if self.check is not None:
            out["check"] = self.check.value
        if self.registry is not None:
            out["registry"] = self.registry
        if self.status is not None:
            out["dossierStatus"] = self.status
        if self.answer_hash is not None:
            out["answerHmac"] = self.answer_hash
        return out

    def purpose(self, purpose: Purpose) -> Purpose:
        """`purpose` with only the subjects the dossier names, whenever the registry
        answered with one (confirmed or not: a dossier that fails a check names no one
        else either); as stated when it did not."""
        if self.answer is None:
            return purpose
        kept = tuple(s for s in purpose.subjects if s in self.persons)
        if len(kept) == len(purpose.subjects):
            return purpose
        return Purpose(purpose.procedure, purpose.case, purpose.officer, kept, purpose.hidden_until)

    def error(self) -> GatewayError | None:
        """What a `required` procedure's request is refused with; `None`: admitted."""
        if self.requirement is not CaseConfirmation.REQUIRED or self.check is None:
            return None
        if not self.check.about_dossier:
            return CaseRegistryUnavailable(check=self.check.value)
        return CaseNotConfirmed(_MESSAGES[self.check], check=self.check.value)


def _json(value: Any) -> Any:
    """A dossier's canonical record as JSON values (dates as ISO text)."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _whole(dossier: Dossier) -> bool:
    """Whether a dossier has what its checks read, each of its type, and no field the
    source gave a value of the wrong type for (at any depth)."""
    handlers = dossier.handling_organisations
    persons = dossier.persons
    values: list[Any] = [
        dossier.dossier_code,
        dossier.procedure_code,
        dossier.receiving_organisation,
        dossier.status,
        dossier.received_on,
        dossier.due_on,
        handlers,
        persons,
    ]
    if isinstance(handlers, list):
        values.extend(handlers)
    if isinstance(persons, list):
        values.extend(
            v for p in persons if isinstance(p, DossierPerson) for v in (p.identifier, p.role)
        )
    return (
        not any(isinstance(v, Exception) for v in values)
        and isinstance(dossier.procedure_code, str)
        and isinstance(dossier.status, DossierStatus)
        and isinstance(persons, list)
        and all(isinstance(p, DossierPerson) and isinstance(p.identifier, str) for p in persons)
    )


_Key = tuple[str, str, int]


class Cases:
    """Confirms requests' cases at the dossier registry, keeping found dossiers `ttl` s.

    `key` keys the digest of the registry's answer kept in the envelope (an HMAC, so
    that whoever holds the dossier cannot link a record to it by hashing it).
    """

    def __init__(
        self,
        *,
        key: bytes,
        ttl: float = 30.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self.ttl = ttl
        self._size = size
        self._clock = clock
        self._kept: dict[_Key, tuple[float, Connector, _Answer]] = {}
        self._pending: dict[_Key, asyncio.Task[_Answer | None]] = {}
        self.lookups = 0
        """Lookups sent to a registry (a kept dossier costs none)."""

    def __repr__(self) -> str:
        return f"Cases(ttl={self.ttl!r}, kept={len(self._kept)})"

    async def confirm(
        self,
        requirement: CaseConfirmation,
        *,
        purpose: Purpose,
        client_id: str,
        registry: ConnectorRegistry,
        fetch: FetchContext,
    ) -> Confirmation | None:
        """The confirmation of `purpose.case`; `None` for a procedure that asks none.

        The lookup takes at most half the time left before the request's
        `fetch.deadline`: one that does not end by then is `REGISTRY_UNAVAILABLE`, like a
        registry that fails, and the reads of an optional case keep the other half.
        """
        if requirement is CaseConfirmation.NONE:
            return None
        served = _registry(registry)
        if served is None:
            return Confirmation(requirement, CaseCheck.NO_REGISTRY)
        connector, fields = served
        # At most half the time left for sources: an optional case's reads keep the rest.
        until = fetch.deadline
        if until is not None:
            now = asyncio.get_running_loop().time()
            until = now + max(0.0, until - now) / 2
            fetch = dataclasses.replace(fetch, deadline=until)
        try:
            async with asyncio.timeout_at(until):
                found = await self._look_up(connector, fields, purpose.case, client_id, fetch)
        except (GatewayError, TimeoutError):
            return Confirmation(
                requirement, CaseCheck.REGISTRY_UNAVAILABLE, registry=connector.name
            )
        except Exception as exc:  # a connector's bug, an answer nothing expected
            log.error("case_registry_failed", connector=connector.name, error=type(exc).__name__)
            return Confirmation(
                requirement, CaseCheck.REGISTRY_UNAVAILABLE, registry=connector.name
            )
        if found is None:
            return Confirmation(requirement, CaseCheck.NO_SUCH_DOSSIER, registry=connector.name)
        dossier = found.dossier
        status = dossier.status
        check: CaseCheck | None = None
        organisation = client_organisation(client_id)
        if not same_procedure(dossier.procedure_code or "", purpose.procedure):
            check = CaseCheck.OTHER_PROCEDURE
        elif organisation != dossier.receiving_organisation and organisation not in (
            dossier.handling_organisations or ()
        ):
            check = CaseCheck.OTHER_ORGANISATION
        elif status not in OPEN_STATUSES:
            check = CaseCheck.DOSSIER_CLOSED
        return Confirmation(
            requirement,
            check,
            registry=found.registry,
            status=None if status is None else status.value,
            answer_hash=found.answer_hash,
            answer=found.answer,
            persons=frozenset(p.identifier for p in dossier.persons or () if p.identifier),
        )

    async def _look_up(
        self,
        connector: Connector,
        fields: frozenset[str],
        code: str,
        client_id: str,
        fetch: FetchContext,
    ) -> _Answer | None:
        # Per client (a lookup goes out in the name of the request that made it, its
        # client, officer and case in the headers) and per registry in use: a new
        # version of the connector is another registry.
        key = (code, client_id, id(connector))
        kept = self._kept.get(key)
        if kept is not None and kept[0] > self._clock() and kept[1] is connector:
            return kept[2]
        task = self._pending.get(key)
        if task is None:
            # One lookup for the client's requests of the case meanwhile, on its own, so
            # that a request cancelled (its deadline) cancels it for no other.
            task = asyncio.ensure_future(self._fetch(connector, fields, code, fetch))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, connector, done))
        return await asyncio.shield(task)

    def _settled(self, key: _Key, connector: Connector, task: asyncio.Task[Any]) -> None:
        self._pending.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        found = task.result()
        if found is None or self.ttl <= 0:
            return
        now = self._clock()
        if len(self._kept) >= self._size:
            self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
            if len(self._kept) >= self._size:
                self._kept.clear()
        self._kept[key] = (now + self.ttl, connector, found)

    async def _fetch(
        self, connector: Connector, fields: frozenset[str], code: str, fetch: FetchContext
    ) -> _Answer | None:
        self.lookups += 1
        # The calls of the lookup end by the request's deadline, retries included.
        with deadline_scope(fetch.deadline):
            answers = await connector.fetch(DOSSIER_KIND, [code], fields, fetch)
        record = answers.get(code)
        if record is None:
            return None
        if not isinstance(record, Mapping):
            raise CaseRegistryUnavailable("The registry's answer is not a dossier.")
        dossier = build(
            Dossier, {k: v for k, v in record.items() if k in fields}, source=connector.name
        )
        if not _whole(dossier):
            raise CaseRegistryUnavailable("The registry's answer is not a whole dossier.")
        persons = dossier.persons or []
        answer = _json(
            {
                name: getattr(dossier, attr)
                for name, attr in (
                    ("dossierCode", "dossier_code"),
                    ("procedureCode", "procedure_code"),
                    ("receivingOrganisation", "receiving_organisation"),
                    ("handlingOrganisations", "handling_organisations"),
                    ("status", "status"),
                    ("receivedOn", "received_on"),
                    ("dueOn", "due_on"),
                )
            }
            | {"persons": [{"identifier": p.identifier, "role": p.role} for p in persons]}
        )
        digest = hmac.new(self._key, b"dossier\x00" + canonical_json(answer), "sha256")
        return _Answer(connector.name, dossier, answer, digest.hexdigest())


def _registry(registry: ConnectorRegistry) -> tuple[Connector, frozenset[str]] | None:
    """The connector that serves every field the checks read, with the dossier fields it
    serves; `None` if none does (no registry, or one spread over several sources)."""
    route = registry.route(DOSSIER_KIND, DOSSIER_FIELDS)
    for connector, fields in route.served:
        if fields >= CHECKED_FIELDS:
            return connector, fields
    return None
