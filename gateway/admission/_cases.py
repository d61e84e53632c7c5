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

A confirmed dossier limits the subjects to the persons it names: another subject's
fields are withheld as `SUBJECT_NOT_IN_CASE`, field by field, as for a subject the
purpose does not name. The first failed check refuses a `required` procedure's request
(`CASE_NOT_CONFIRMED`, naming the check and nothing of the dossier's persons); an
`optional` one proceeds on the subjects as stated, and its record says why it was not
confirmed. When no registry answers (none is configured, it fails, times out or its
breaker is open), a `required` request fails closed (`CASE_REGISTRY_UNAVAILABLE`, 503)
and an `optional` one proceeds, recorded as not confirmed.

A dossier found is kept for `ttl` seconds (a dossier not found, or a failure, is not
kept): a case's requests within that time cost no lookup, and a dossier closed
meanwhile is seen closed at most `ttl` seconds late. The record keeps the check, the
dossier's status and the hash of the registry's answer (`caseConfirmation` in the
envelope); the answer itself goes to the sealed personal part.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final

from connectors import ConnectorRegistry, FetchContext
from gateway.errors import CaseNotConfirmed, CaseRegistryUnavailable, GatewayError
from gateway.log import canonical_json
from policies import OPEN_STATUSES, CaseConfirmation, DossierStatus, Purpose
from schema import Dossier, DossierPerson, build, connector_fields

__all__ = [
    "DOSSIER_FIELDS",
    "CaseCheck",
    "Cases",
    "Confirmation",
    "client_organisation",
    "same_procedure",
]

DOSSIER_KIND: Final = "Dossier"
DOSSIER_FIELDS: Final = frozenset(connector_fields()[DOSSIER_KIND])
"""Every canonical field of a dossier: the checks read four, the record hashes all."""
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
            out["answerHash"] = self.answer_hash
        return out

    def purpose(self, purpose: Purpose) -> Purpose:
        """`purpose` with the subjects a confirmed dossier names (as stated, if not)."""
        if not self.confirmed:
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
    """Whether a dossier has what its checks read, each of its type."""
    handlers = dossier.handling_organisations
    return (
        isinstance(dossier.procedure_code, str)
        and isinstance(dossier.status, DossierStatus)
        and isinstance(dossier.receiving_organisation, str | None)
        and (handlers is None or isinstance(handlers, list))
        and isinstance(dossier.persons, list)
        and all(
            isinstance(p, DossierPerson) and isinstance(p.identifier, str) for p in dossier.persons
        )
    )


class Cases:
    """Confirms requests' cases at the dossier registry, keeping found dossiers `ttl` s."""

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._size = size
        self._clock = clock
        self._kept: dict[tuple[str, tuple[int, ...]], tuple[float, tuple[Any, ...], _Answer]] = {}
        self._pending: dict[tuple[str, tuple[int, ...]], asyncio.Task[_Answer | None]] = {}
        self.lookups = 0
        """Lookups sent to a registry (a kept dossier costs none)."""

    async def confirm(
        self,
        requirement: CaseConfirmation,
        *,
        purpose: Purpose,
        client_id: str,
        registry: ConnectorRegistry,
        fetch: FetchContext,
    ) -> Confirmation | None:
        """The confirmation of `purpose.case`; `None` for a procedure that asks none."""
        if requirement is CaseConfirmation.NONE:
            return None
        route = registry.route(DOSSIER_KIND, DOSSIER_FIELDS)
        if not route.served:
            return Confirmation(requirement, CaseCheck.NO_REGISTRY)
        try:
            found = await self._look_up(route.served, purpose.case, fetch)
        except GatewayError:
            names = ",".join(sorted(c.name for c, _ in route.served))
            return Confirmation(requirement, CaseCheck.REGISTRY_UNAVAILABLE, registry=names)
        if found is None:
            names = ",".join(sorted(c.name for c, _ in route.served))
            return Confirmation(requirement, CaseCheck.NO_SUCH_DOSSIER, registry=names)
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

    async def _look_up(self, served: Any, code: str, fetch: FetchContext) -> _Answer | None:
        connectors = tuple(c for c, _ in served)
        key = (code, tuple(id(c) for c in connectors))
        kept = self._kept.get(key)
        now = self._clock()
        # Kept per registry in use: a new version of the connector is another registry.
        if kept is not None and kept[0] > now and kept[1] == connectors:
            return kept[2]
        task = self._pending.get(key)
        if task is None:
            # One lookup for every request of the case meanwhile; it runs on its own, so
            # that a request cancelled (its deadline) cancels it for no other.
            task = asyncio.ensure_future(self._fetch(served, code, fetch))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, connectors, done))
        return await asyncio.shield(task)

    def _settled(
        self, key: tuple[str, tuple[int, ...]], connectors: tuple[Any, ...], task: asyncio.Task[Any]
    ) -> None:
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
        self._kept[key] = (now + self.ttl, connectors, found)

    async def _fetch(self, served: Any, code: str, fetch: FetchContext) -> _Answer | None:
        self.lookups += 1
        record: dict[str, Any] = {}
        names = []
        for connector, fields in served:
            answers = await connector.fetch(DOSSIER_KIND, [code], fields, fetch)
            one = answers.get(code)
            if one is None:
                return None
            if not isinstance(one, dict):
                raise CaseRegistryUnavailable("The registry's answer is not a dossier.")
            record.update({k: v for k, v in one.items() if k in fields})
            names.append(connector.name)
        registry = ",".join(sorted(names))
        dossier = build(Dossier, record, source=registry)
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
        digest = hashlib.sha256(canonical_json(answer)).hexdigest()
        return _Answer(registry, dossier, answer, digest)
