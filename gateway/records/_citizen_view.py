"""What a citizen sees of the accesses to their data ("who looked at my data, and why").

For each access: when, which organisation and system, the officer (by name or by role,
as the procedure's `officer_disclosure` says), the procedure's name in Vietnamese and
English, the case, the fields read about this citizen (allowed, and answered by a
source) and on what ground (the legal basis, or the consent), the fields allowed that
no source answered, the fields withheld, and the outcome. An auditor's search by the
citizen's id is shown too, by the auditor's organisation's name. Accesses hidden until
a date (`purpose.hiddenUntil`, where the procedure allows it) appear from that instant on.

`sourceEvidence`, when there is any, names the sources that gave evidence of the calls
made (an X-Road security server's request hash of each): the citizen learns that the agency's own
server logged the read too, and can ask the agency. Neither the hashes nor their number
are shown: one call may ask for several people (a batch), so its hash commits to the
others too, whose ids are few enough to try against it, and the number of calls tells
how many people the request read. An auditor reads the hashes
(`gateway.records._evidence`).

An access whose answer never left (a later record marks it `undelivered`) has that
outcome: no field was read by anyone, so none is listed as read nor given a ground;
`notDelivered` lists those a source answered that the gateway did not deliver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.instants import format_instant
from gateway.records._envelope import read_envelope
from gateway.records._personal import personal_parts
from gateway.records._recorder import UNDELIVERED, undelivered
from gateway.storage import clients
from policies import (
    AGENCY_KIND_LABELS,
    ORGANISATION_NAMES,
    AgencyKind,
    Catalogue,
    UnknownProcedure,
)

__all__ = ["CITIZEN_VISIBLE_TYPES", "citizen_items"]

CITIZEN_VISIBLE_TYPES = ("access", "auditor_search")
_ALLOWED = {"ALLOWED_BY_LAW": "law", "ALLOWED_BY_CONSENT": "consent"}
_AUDITOR = {"vi": "Kiểm tra viên nhật ký truy cập", "en": "Access-log auditor"}
_OFFICER = {"vi": "Cán bộ", "en": "Officer"}
_UNKNOWN = {"vi": "Không rõ", "en": "Unknown"}


@dataclass(frozen=True, slots=True)
class _System:
    name: str
    agency_kinds: tuple[str, ...]


def _json(value: Any) -> Any:
    return value if isinstance(value, dict | list) or value is None else orjson.loads(value)


async def citizen_items(
    conn: AsyncConnection, rows: Sequence[Any], subject: str, catalogue: Catalogue
) -> list[dict[str, Any]]:
    """The citizen's view of a page of their records."""
    ids = [row.id for row in rows]
    parts = await personal_parts(conn, ids, subject=subject)
    personal = {event_id: part.value() for event_id, part in parts.items()}
    unsent = await undelivered(conn, ids)
    client_ids = {row.client_id for row in rows if row.client_id}
    systems = {
        r.id: _System(r.name, tuple(_json(r.agency_kinds)))
        for r in await conn.execute(
            sa.select(clients.c.id, clients.c.name, clients.c.agency_kinds).where(
                clients.c.id.in_(client_ids)
            )
        )
    }
    return [
        _item(
            row,
            personal.get(row.id),
            subject,
            catalogue,
            systems.get(row.client_id),
            delivered=row.id not in unsent,
        )
        for row in rows
    ]


def _dossier(
    envelope: Mapping[str, Any], personal: Mapping[str, Any], subject: str
) -> dict[str, Any] | None:
    """The dossier an access was for, as the dossier registry answered about it: its
    code and procedure, who received it, its status and dates; whether it confirmed the
    case, and if not, why. Shown only to a person the dossier names: it is their case,
    not another subject's; the dossier's other persons are shown to no one."""
    said = envelope.get("caseConfirmation")
    if not isinstance(said, Mapping):
        return None
    answer = personal.get("dossier")
    if not isinstance(answer, Mapping):
        return None
    persons = answer.get("persons") or ()
    if not any(isinstance(p, Mapping) and p.get("identifier") == subject for p in persons):
        return None
    shown: dict[str, Any] = {
        "code": answer.get("dossierCode"),
        "confirmed": bool(said.get("confirmed")),
        "check": said.get("check"),
        "status": said.get("dossierStatus"),
        "procedure": answer.get("procedureCode"),
        "receivedBy": answer.get("receivingOrganisation"),
        "receivedOn": answer.get("receivedOn"),
        "dueOn": answer.get("dueOn"),
    }
    return shown


def _item(
    row: Any,
    personal: Mapping[str, Any] | None,
    subject: str,
    catalogue: Catalogue,
    system: _System | None,
    *,
    delivered: bool = True,
) -> dict[str, Any]:
    envelope = read_envelope(row.envelope)
    item: dict[str, Any] = {
        "id": row.id,
        "time": format_instant(row.ts),
        "kind": "audit" if row.type == "auditor_search" else "access",
        "organisation": row.organisation or envelope.get("auditorOrg"),
        "system": None,
        "officer": None,
        "procedure": None,
        "case": None,
        "fields": [],
        "unanswered": [],
        "withheld": [],
        "basis": [],
        "outcome": row.outcome if delivered else UNDELIVERED,
        "inLog": row.leaf_index is not None,
        "receipt": f"/me/accesses/{row.id}/receipt",
    }
    if row.type == "auditor_search":
        org = envelope.get("auditorOrg")
        names = ORGANISATION_NAMES.get(org) if isinstance(org, str) else None
        if names is not None:
            item["organisation"] = names[0]
        item["officer"] = {"role": _AUDITOR}
        item["basis"] = [{"kind": "audit"}]
        return item
    if system is not None:
        item["system"] = {"id": row.client_id, "name": system.name}
    entry = _procedure(catalogue, row.procedure)
    item["procedure"] = (
        {"code": row.procedure, "name": None}
        if entry is None
        else {"code": entry.code, "name": {"vi": entry.name.vi, "en": entry.name.en}}
    )
    if personal is None:
        # Deleted when another person it named was forgotten, before personal parts
        # were sealed for each person: the envelope is all that is left.
        item["details"] = "removed"
        return item
    item["case"] = personal.get("case")
    dossier = _dossier(envelope, personal, subject)
    if dossier is not None:  # only where the procedure confirms its cases
        item["dossier"] = dossier
    confirmed = _evidence_sources(personal.get("evidence"))
    if confirmed:  # records without evidence read as they did
        item["sourceEvidence"] = confirmed
    item["officer"] = _officer(entry, personal.get("officer"), system)
    subjects = personal.get("subjects") or []
    mine = subjects.index(subject) if subject in subjects else None
    # The fields a source answered for this citizen; records written before they
    # were kept count every allowed field as read.
    served = personal.get("served")
    answered = set(served.get(subject) or ()) if isinstance(served, dict) else None
    fields: set[str] = set()
    unanswered: set[str] = set()
    withheld: set[tuple[str, str]] = set()
    basis: dict[tuple[str, str | None], None] = {}
    # From envelope version 3 a consent is named by its commitment; the personal part
    # maps each back to the consent's id.
    consents = personal.get("consents")
    consent_ids: Mapping[str, str] = consents if isinstance(consents, dict) else {}
    for decision in envelope.get("decisions") or ():
        if mine not in decision.get("subjects", ()):
            continue
        ground = _ALLOWED.get(decision["decision"])
        if ground is None:
            withheld.add((decision["path"], decision["decision"]))
            continue
        if answered is not None and decision["path"] not in answered:
            unanswered.add(decision["path"])
            continue
        fields.add(decision["path"])
        ref = decision.get("basis")
        basis[(ground, consent_ids.get(ref, ref) if ref is not None else None)] = None
    if not delivered:
        # Read from the sources, but never given to anyone: on no ground at all.
        item["notDelivered"] = sorted(fields)
        fields, basis = set(), {}
    item["fields"] = sorted(fields)
    item["unanswered"] = sorted(unanswered)
    item["withheld"] = [{"field": p, "code": c} for p, c in sorted(withheld)]
    item["basis"] = [
        {"kind": "law", "legalBasis": ref}
        if ground == "law"
        else {"kind": "consent", "consentId": ref}
        for ground, ref in basis
    ]
    return item


def _evidence_sources(evidence: Any) -> list[str]:
    """The sources that gave evidence of their calls (none in a record written before
    evidence was kept)."""
    if not isinstance(evidence, dict):
        return []
    return sorted(source for source, kinds in evidence.items() if kinds)


def _procedure(catalogue: Catalogue, code: str | None) -> Any:
    if code is None:
        return None
    try:
        return catalogue.get(code)
    except UnknownProcedure:
        return None


def _officer(entry: Any, officer: str | None, system: _System | None) -> dict[str, Any]:
    if entry is None:
        # No procedure of the catalogue (a refused request): neither a name nor a
        # role can be told, and a role guessed from the system's kinds could mislead.
        return {"role": _UNKNOWN}
    if entry.officer_disclosure == "name" and officer:
        return {"name": officer}
    known = {kind.value for kind in AgencyKind}
    kinds = [k for k in (system.agency_kinds if system else ()) if k in known]
    kinds = [k for k in kinds if k in entry.agency_kinds] or kinds
    if not kinds:
        return {"role": _OFFICER}
    vi, en = AGENCY_KIND_LABELS[AgencyKind(kinds[0])]
    return {"role": {"vi": f"Cán bộ {vi}", "en": f"Officer of the {en}"}}
