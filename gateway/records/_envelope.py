"""The envelope of an event: what auditors see of it, and what the public log commits to.

One type for every event, written in one place (`seal`) and read in one place
(`read_envelope`). Every envelope has the header (`v`, `id`, `type`, `ts`, `requestId`,
`outcome`, `policyVersion`, `subjectCommitments`, `personalHash`); each event type adds
the fields listed under it in `EnvelopeBody`. No field holds personal data: officers,
cases and auditors appear as pseudonyms, subjects as commitments
(`HMAC(subject_key, event id)`), consents as commitments too (`consent_commitment`:
the agency that asked for a consent knows its id, and must not find the person's
records by it once they are forgotten), and the personal part as its salted hash.

The hash of an envelope is the hex SHA-256 of its RFC 8785 JSON (`canonical_hash`),
and it is in the event's public leaf, so a field is never removed, renamed or given
another meaning: what later versions add comes with a new `v`, and envelopes of
every version already written keep verifying.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final, Required, TypedDict

import orjson

from gateway.log import canonical_hash, canonical_json, plain_canonical_json

__all__ = [
    "ENVELOPE_VERSION",
    "DecisionEntry",
    "Envelope",
    "EnvelopeBody",
    "canonical_personal",
    "commit_consents",
    "decision_codes",
    "envelope_hash",
    "indexed_columns",
    "personal_hash",
    "read_envelope",
    "seal",
]

ENVELOPE_VERSION: Final = 3
"""1: the first envelopes. 2: adds the summary of refusals (`refused`, `minute`).
3: consent ids become commitments (in `consent`, a decision's `basis`, an action's
`consent`), and a forget record holds a count and a salted digest of the records it
made unreadable (`records`, `recordsDigest`) instead of their ids (`events`).
Later in 3, a record of outcome `undelivered` marks another as not delivered
(`undelivered`: its id), an access names the version of each source that
answered (`sourceVersions`) and what the dossier registry said of its case
(`caseConfirmation`); no field of an earlier record changes."""


class DecisionEntry(TypedDict):
    """One distinct decision of an access, with the positions of its subjects."""

    path: str
    decision: str
    basis: str | None
    subjects: list[int]
    """Positions in the purpose's subjects (-1: someone else, a related person)."""


class EnvelopeBody(TypedDict, total=False):
    """The fields each event type adds to the header."""

    # access: a GraphQL request (a refused one has the first six and status, errors).
    hiddenUntil: str
    client: str
    organisation: str
    kid: str
    officer: str | None
    """The officer's pseudonym."""
    procedure: str | None
    case: str
    """The case number's pseudonym."""
    subjects: int
    jti: str
    """Also on a refusal answered 503 (the gateway's own), whose client may retry."""
    reusesRefusedToken: bool
    """Later in 3, optional: the request reuses a token the gateway answered 503 (once)."""
    decisions: list[DecisionEntry]
    sources: list[str]
    sourceVersions: dict[str, int]
    """Later in 3, optional: each source's connector version (which mapping answered)."""
    sourceCalls: int
    caseConfirmation: dict[str, Any]
    """Later in 3, optional: what the dossier registry said of the case (`requirement`,
    `confirmed`, the failed `check`, `registry`, `dossierStatus`, `answerHmac`)."""
    actions: list[dict[str, Any]]
    status: int
    errors: list[str]
    fieldsServed: int
    papersAvoided: int
    # access, v2: the summary of one client's refusals with one code in one minute,
    # after the first (which has a record of its own): how many, and the minute.
    refused: int
    minute: str
    # access, v3: outcome `undelivered`, written after a record whose answer never left
    # (its caller was refused or cancelled while it committed): the first's id, with
    # the first's `client`, `organisation` and `procedure` (`auditorOrg` for a search).
    # Readers show the first as not delivered: nothing read, nothing served.
    undelivered: str
    # consent: requested, approved, denied, revoked.
    consent: str
    action: str
    consumer: str
    fields: list[str]
    validUntil: str | None
    actor: str
    acr: str | None
    # admin: a client registered, suspended or reinstated (`client`, `action`), a key
    # added to or revoked from it (also `kid`, the key's public id), a person forgotten.
    operator: str
    operatorOrg: str | None
    events: list[str]
    """Forgetting, v1 and v2, and retention: the records whose personal part it deleted."""
    records: int
    """Forgetting, v3: how many records named the person."""
    recordsDigest: str
    """Forgetting, v3: SHA-256 of a secret salt and those records' ids, in order."""
    consentsDeleted: int
    # admin, action `retention` (outcome `cleared`): `events` lists the records whose
    # personal part and subject-index entries a run of retention clears.
    subjectEntries: int
    consentsExpired: int
    schedule: bool
    """Run by the schedule (`operator` names who ran it by hand otherwise)."""
    months: list[str]
    """Retention on PostgreSQL: the months (`YYYY-MM`, UTC) whose partitions it dropped."""
    monthRecords: int
    # admin, `log_loss`: a statement of loss that opens the log's next epoch (see
    # `gateway.records._loss`): the log as restored (`origin`, `size`, `root`), the
    # checkpoint published beyond it, the leaves missing, why, and the new origin.
    reason: str
    code: str
    origin: str
    size: int
    root: str
    published: dict[str, Any]
    missing: list[int] | None
    newOrigin: str
    # admin, the catalogue: `catalogue_recorded` (from the files), `_proposed`,
    # `_approved`, `_rejected`: the version (its policy_version) and the procedure changed.
    catalogueVersion: str
    # auditor_search: a search or an export.
    auditor: str
    auditorOrg: str | None
    filter: dict[str, Any]
    results: int
    export: bool
    checkpoint: int


class Envelope(EnvelopeBody, total=False):
    """A whole envelope: the header every event has, and its type's fields."""

    v: Required[int]
    id: Required[str]
    type: Required[str]
    ts: Required[str]
    requestId: Required[str]
    outcome: Required[str]
    policyVersion: Required[str]
    subjectCommitments: Required[list[str]]
    personalHash: Required[str]


def seal(
    body: EnvelopeBody,
    *,
    id: str,
    type: str,
    ts: datetime.datetime,
    request_id: str,
    outcome: str,
    policy_version: str,
    subject_commitments: list[str],
    personal_hash: str,
) -> Envelope:
    """The envelope of an event: its header around its type's fields."""
    envelope: Envelope = {
        **body,
        "v": ENVELOPE_VERSION,
        "id": id,
        "type": type,
        "ts": ts.isoformat(),
        "requestId": request_id,
        "outcome": outcome,
        "policyVersion": policy_version,
        "subjectCommitments": subject_commitments,
        "personalHash": personal_hash,
    }
    return envelope


def envelope_hash(envelope: Envelope) -> str:
    """What the public leaf commits to: hex SHA-256 of the envelope's RFC 8785 JSON."""
    return canonical_hash(envelope)


def read_envelope(value: Any) -> Envelope:
    """An envelope as a database column gives it back (a mapping, or its JSON text)."""
    found = orjson.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(found, dict):
        raise ValueError("an envelope is a JSON object")
    envelope: Envelope = found  # type: ignore[assignment]
    return envelope


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def canonical_personal(personal: Mapping[str, Any]) -> bytes:
    """A personal part as it is hashed and sealed: its RFC 8785 JSON (a part that is
    already plain JSON, as the gateway's are, is written without a copy first)."""
    fast = plain_canonical_json(personal)
    return fast if fast is not None else canonical_json(_jsonable(personal))


def personal_hash(salt: str, canonical: bytes) -> str:
    """The salted hash of a personal part (its `canonical_personal`), as its envelope holds it."""
    return hashlib.sha256(bytes.fromhex(salt) + canonical).hexdigest()


def commit_consents(body: EnvelopeBody, commitments: Mapping[str, str]) -> EnvelopeBody:
    """`body` with each consent id of `commitments` replaced by its commitment.

    Consent ids are in a consent event's `consent`, in the `basis` of a decision
    allowed by consent, and in an action's `consent`.
    """
    out: EnvelopeBody = {**body}
    consent = out.get("consent")
    if consent is not None:
        out["consent"] = commitments.get(consent, consent)
    if "decisions" in out:
        out["decisions"] = [
            {**d, "basis": commitments[basis]}
            if d["decision"] == "ALLOWED_BY_CONSENT"
            and (basis := d["basis"]) is not None
            and basis in commitments
            else d
            for d in out["decisions"]
        ]
    if "actions" in out:
        out["actions"] = [
            {**a, "consent": commitments[a["consent"]]} if a.get("consent") in commitments else a
            for a in out["actions"]
        ]
    return out


def indexed_columns(envelope: EnvelopeBody) -> dict[str, Any]:
    """The columns of `events` that repeat the envelope, for searching by them."""
    hidden = envelope.get("hiddenUntil")
    return {
        "organisation": envelope.get("organisation"),
        "officer": envelope.get("officer"),
        "case_ref": envelope.get("case"),
        "hidden_until": None if hidden is None else datetime.datetime.fromisoformat(hidden),
        "fields_served": envelope.get("fieldsServed", 0),
        "papers_avoided": envelope.get("papersAvoided", 0),
        "dossier_status": (envelope.get("caseConfirmation") or {}).get("dossierStatus"),
    }


def decision_codes(envelope: EnvelopeBody) -> list[str]:
    """The distinct decision codes of an access, for `event_decisions`."""
    decisions: Sequence[DecisionEntry] = envelope.get("decisions") or ()
    return sorted({d["decision"] for d in decisions})
