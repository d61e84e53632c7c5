"""Per-field decisions: may this client read this field of this subject, for this purpose?

A policy answers one `AccessRequest`: it returns the basis that allows the read
(`Allowed`), returns `None` when it has no objection but grants nothing itself, or
raises a `PolicyDenied` subclass. Policies combine with `AllOf` (every one must pass;
the first refusal wins, so the order of the children is the order of precedence) and
`AnyOf` (the first that grants wins). The gateway's engine is

    AllOf([ClientRunsProcedure, SubjectInCase, FieldInPurpose,
           AnyOf([ByLaw, ByConsent])])

which gives the precedence `CLIENT_NOT_AUTHORISED` > `SUBJECT_NOT_IN_CASE` >
`PURPOSE_NOT_ALLOWED` > `CONSENT_REQUIRED`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

from gateway.errors import (
    ClientNotAuthorised,
    ConsentRequired,
    PolicyDenied,
    PurposeNotAllowed,
    SubjectNotInCase,
)
from policies._catalogue import Basis, Catalogue, FieldRule
from policies._purpose import Purpose

__all__ = [
    "AccessRequest",
    "ActiveConsent",
    "AllOf",
    "Allowed",
    "AnyOf",
    "ByConsent",
    "ByLaw",
    "ClientRunsProcedure",
    "Engine",
    "FieldInPurpose",
    "Policy",
    "SubjectInCase",
    "UnsafeAllowAll",
    "default_policy",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ActiveConsent:
    """A consent in force: what it lets which consumer read, until when."""

    id: str
    subject: str = field(repr=False)
    consumer: str
    procedure: str
    fields: frozenset[str]
    valid_until: datetime.datetime
    case: str = field(repr=False)
    """The case it was given for (Unicode NFC, as `Purpose.case`)."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One question: may `client` read `path` of `subject` for this purpose?"""

    client_id: str
    agency_kinds: frozenset[str]
    purpose: Purpose
    subject: str = field(repr=False)
    path: str
    consents: Sequence[ActiveConsent] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class Allowed:
    """Why a read is allowed: the law the procedure rests on, or a consent."""

    basis: Literal["law", "consent"]
    reference: str
    """The legal citation, or the consent id."""

    @property
    def code(self) -> str:
        """`ALLOWED_BY_LAW` or `ALLOWED_BY_CONSENT`."""
        return "ALLOWED_BY_LAW" if self.basis == "law" else "ALLOWED_BY_CONSENT"


class Policy(Protocol):
    """Answers one access request."""

    def check(self, request: AccessRequest) -> Allowed | None:
        """The basis that allows the read, `None` for no objection, or raise `PolicyDenied`."""
        ...


class AllOf:
    """Every child must pass; the first refusal is raised; the last basis is returned."""

    def __init__(self, children: Sequence[Policy]) -> None:
        if not children:
            raise ValueError("AllOf needs at least one policy: an empty AllOf would allow all")
        self.children = tuple(children)

    def check(self, request: AccessRequest) -> Allowed | None:
        """See `Policy.check`."""
        allowed: Allowed | None = None
        for child in self.children:
            allowed = child.check(request) or allowed
        return allowed


class AnyOf:
    """The first child that grants wins; if none does, the first refusal is raised."""

    def __init__(self, children: Sequence[Policy]) -> None:
        if not children:
            raise ValueError("AnyOf needs at least one policy: an empty AnyOf would deny all")
        self.children = tuple(children)

    def check(self, request: AccessRequest) -> Allowed | None:
        """See `Policy.check`."""
        first: PolicyDenied | None = None
        for child in self.children:
            try:
                allowed = child.check(request)
            except PolicyDenied as exc:
                first = first or exc
                continue
            if allowed is not None:
                return allowed
        if first is not None:
            raise first
        return None


class ClientRunsProcedure:
    """The client acts for an agency kind that runs the procedure."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._kinds: dict[str, frozenset[str]] = {}
        """By procedure code: the agency kinds that run it (the catalogue does not change)."""

    def check(self, request: AccessRequest) -> None:
        """See `Policy.check`."""
        code = request.purpose.procedure
        kinds = self._kinds.get(code)
        if kinds is None:
            kinds = frozenset(str(k) for k in self._catalogue.get(code).agency_kinds)
            self._kinds[code] = kinds
        if not kinds & request.agency_kinds:
            raise ClientNotAuthorised(procedure=request.purpose.procedure)


class SubjectInCase:
    """The subject is one the token's purpose names."""

    def check(self, request: AccessRequest) -> None:
        """See `Policy.check`."""
        if request.subject not in request.purpose.subjects:
            raise SubjectNotInCase


class FieldInPurpose:
    """The procedure reads this field at all."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue

    def check(self, request: AccessRequest) -> None:
        """See `Policy.check`."""
        if request.path not in self._catalogue.get(request.purpose.procedure).fields:
            raise PurposeNotAllowed(field=request.path, procedure=request.purpose.procedure)


def _rule(catalogue: Catalogue, request: AccessRequest) -> tuple[Basis, str]:
    procedure = catalogue.get(request.purpose.procedure)
    rule = procedure.fields[request.path]
    if isinstance(rule, FieldRule):
        return rule.basis, rule.citation
    citation = "; ".join(
        " ".join(part for part in (b.document, b.article) if part) for b in procedure.legal_basis
    )
    return rule, citation


class ByLaw:
    """The procedure's legal basis covers the field."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._allowed: dict[tuple[str, str], Allowed | None] = {}
        """By (procedure, path): the grant, or `None` where the law does not cover the
        field. It depends on the catalogue alone, which does not change under a policy."""

    def check(self, request: AccessRequest) -> Allowed:
        """See `Policy.check`."""
        key = (request.purpose.procedure, request.path)
        try:
            allowed = self._allowed[key]
        except KeyError:
            basis, citation = _rule(self._catalogue, request)
            allowed = self._allowed[key] = Allowed("law", citation) if basis == Basis.LAW else None
        if allowed is None:
            raise ConsentRequired(field=request.path, procedure=request.purpose.procedure)
        return allowed


class ByConsent:
    """An active consent covers subject, client, procedure, case and field.

    A consent is for the case it was asked under; only a procedure whose catalogue
    entry says `consents_reusable_across_cases` lets it cover the client's other cases.
    """

    def __init__(self, catalogue: Catalogue, *, now: datetime.datetime | None = None) -> None:
        self._catalogue = catalogue
        self._now = now

    def check(self, request: AccessRequest) -> Allowed:
        """See `Policy.check`."""
        now = self._now or datetime.datetime.now(datetime.UTC)
        purpose = request.purpose
        any_case = self._catalogue.get(purpose.procedure).consents_reusable_across_cases
        for consent in request.consents:
            if (
                consent.subject == request.subject
                and consent.consumer == request.client_id
                and consent.procedure == purpose.procedure
                and (any_case or consent.case == purpose.case)
                and request.path in consent.fields
                and consent.valid_until > now
            ):
                return Allowed("consent", consent.id)
        raise ConsentRequired(field=request.path, procedure=request.purpose.procedure)


class UnsafeAllowAll:
    """Allows every read, citing no law. For tests of other layers only; never deploy it."""

    def __init__(self) -> None:
        log.warning("unsafe_policy_in_use", policy="UnsafeAllowAll")

    def check(self, request: AccessRequest) -> Allowed:
        """See `Policy.check`."""
        return Allowed("law", "UnsafeAllowAll: no decision was made")


class Engine(AllOf):
    """The gateway's engine (see the module's text), which also tells the law's grants.

    For a subject the case names, the checks that do not depend on the subject (the
    client's agency kinds, the procedure's fields, the law) decide alone whenever the
    law grants the field: `granted_by_law` gives that grant, worked out once per
    procedure, agency kinds and path. Anything else (a refusal, a field read by
    consent) is decided by `check`, for each subject.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self._runs = ClientRunsProcedure(catalogue)
        self._field = FieldInPurpose(catalogue)
        self._law = ByLaw(catalogue)
        super().__init__(
            [self._runs, SubjectInCase(), self._field, AnyOf([self._law, ByConsent(catalogue)])]
        )
        self._granted: dict[tuple[str, frozenset[str], str], Allowed | None] = {}

    def granted_by_law(
        self, purpose: Purpose, agency_kinds: frozenset[str], path: str
    ) -> Allowed | None:
        """The law's grant of `path` for any subject `purpose` names, or `None`.

        Where it gives a grant, `check` gives that same grant for each of those subjects;
        `None` where the law does not grant the field (then `check` decides, subject by
        subject).
        """
        key = (purpose.procedure, agency_kinds, path)
        try:
            return self._granted[key]
        except KeyError:
            pass
        # The subject and client are not looked at by these three checks.
        probe = AccessRequest(
            client_id="", agency_kinds=agency_kinds, purpose=purpose, subject="", path=path
        )
        granted: Allowed | None
        try:
            self._runs.check(probe)
            self._field.check(probe)
            granted = self._law.check(probe)
        except PolicyDenied:
            granted = None
        self._granted[key] = granted
        return granted


def default_policy(catalogue: Catalogue) -> Policy:
    """The gateway's engine, in order of precedence."""
    return Engine(catalogue)
