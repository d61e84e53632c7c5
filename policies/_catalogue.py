"""The procedure catalogue: which procedure may read which canonical fields, and why.

Data, not code: one YAML (or JSON) file per procedure under `policies/catalogue/`,
validated when loaded, so a bad file stops start-up naming its file and line. Each entry
gives the national procedure code, who may run it, its legal basis, the canonical
fields it may read with `law` or `consent` as the basis of each, and the papers those
fields replace. `Catalogue.version` (the SHA-256 of the canonical JSON of every entry)
is recorded with every decision, so a decision can be traced to the exact rules.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, NoReturn, Self

import rfc8785
import structlog
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from gateway.configfiles import config_files, load_config_file
from policies._errors import CatalogueError, UnknownProcedure
from policies._vocabulary import AgencyKind

__all__ = [
    "CATALOGUE_DIR",
    "OPEN_STATUSES",
    "SENSITIVE_FIELDS",
    "Basis",
    "CaseConfirmation",
    "Catalogue",
    "DossierStatus",
    "FieldRule",
    "FormField",
    "LegalBasis",
    "Name",
    "Paper",
    "Procedure",
    "load_catalogue",
]

log = structlog.get_logger(__name__)

CATALOGUE_DIR = Path(__file__).with_name("catalogue")

SENSITIVE_FIELDS: frozenset[str] = frozenset({"Citizen.ethnicity", "Citizen.religion"})
"""Sensitive personal data (Decree 13/2023/ND-CP Art. 2(4)): never `law` without a citation."""

_NATIONAL_CODE = re.compile(r"\d\.\d{6}(\.[A-Z][A-Z0-9]{1,9})?")
_LOCAL_CODE = re.compile(r"LOCAL\.[a-z0-9]+(-[a-z0-9]+)*")
_TOP_PATH = re.compile(r"[A-Z][A-Za-z0-9]*\.[a-z][A-Za-z0-9]*")
_PATH = re.compile(r"[A-Z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# pydantic names the members of the `fields` union in error locations; these are not
# keys of the document, so `load_config_file` leaves them out when it looks for the line.
_UNION_TAGS = ("Basis", "FieldRule")

_Loc = tuple[int | str, ...]


class Basis(StrEnum):
    """Why a procedure may read a field: the law requires it, or the subject consented."""

    LAW = "law"
    CONSENT = "consent"


class CaseConfirmation(StrEnum):
    """Whether a procedure's cases are confirmed by the dossier registry before a read."""

    REQUIRED = "required"
    """No read without a confirmed dossier: open, of this procedure, received by or
    assigned to the client's organisation, naming the subjects read."""
    OPTIONAL = "optional"
    """Confirmed when the registry can: a confirmed dossier limits the subjects to its
    persons; a case it cannot confirm is read as stated, and recorded so."""
    NONE = "none"
    """The case is the client's word alone (signed, and kept with the record)."""


class DossierStatus(StrEnum):
    """Where a case's dossier stands at the procedure-handling system."""

    RECEIVED = "RECEIVED"
    IN_PROGRESS = "IN_PROGRESS"
    RETURNED = "RETURNED"
    """Returned to the applicant (incomplete, or refused): no longer handled."""
    DONE = "DONE"
    CANCELLED = "CANCELLED"


OPEN_STATUSES: Final = frozenset({DossierStatus.RECEIVED, DossierStatus.IN_PROGRESS})
"""A case is handled, and its data read, only while its dossier is in one of these."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _top_path(value: str) -> str:
    if not _TOP_PATH.fullmatch(value):
        raise ValueError(f"not a top-level canonical path (Type.field): {value!r}")
    return value


def _path(value: str) -> str:
    if not _PATH.fullmatch(value):
        raise ValueError(f"not a canonical path (Type.field or Type.field.sub...): {value!r}")
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"not an identifier (letters, digits, underscore): {value!r}")
    return value


def _top(path: str) -> str:
    """`Type.field` of a canonical path of any depth."""
    return ".".join(path.split(".", 2)[:2])


_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_TopPath = Annotated[str, AfterValidator(_top_path)]
_Path = Annotated[str, AfterValidator(_path)]


class Name(_Strict):
    """A name or label in Vietnamese and English."""

    vi: _Text
    en: _Text


class LegalBasis(_Strict):
    """A legal document a procedure rests on; the article only where it is certain."""

    document: _Text
    article: _Text | None = None
    note: _Text | None = None


class FieldRule(_Strict):
    """A field's basis together with the provision that justifies it."""

    basis: Basis
    citation: _Text


def _basis_tag(value: Any) -> str:
    return "FieldRule" if isinstance(value, dict | FieldRule) else "Basis"


_FieldBasis = Annotated[
    Annotated[Basis, Tag("Basis")] | Annotated[FieldRule, Tag("FieldRule")],
    Discriminator(_basis_tag),
]
"""A field's entry in `Procedure.fields`: a plain basis, or a basis with a citation."""


_DOCUMENT_KIND = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]


_DOCUMENT_FILTER: Final = "Document.kind"
"""The field a `document_kind` is matched against."""


class Paper(_Strict):
    """A paper applicants were formerly asked for, and the fields that replace it.

    With `document_kind`, the paper is a digitized result the applicant holds (a
    marriage certificate): its `Document` fields are read from the held documents of
    that kind only, and it is avoided only when one is held and served.
    """

    paper: Name
    fields: tuple[_TopPath, ...] = Field(min_length=1)
    document_kind: _DOCUMENT_KIND | None = None


class FormField(_Strict):
    """One field of the procedure's e-form, prefilled from a canonical path.

    With `document_kind`, a `Document` path reads the held documents of that kind only.
    """

    name: Annotated[str, AfterValidator(_identifier)]
    label: Name
    path: _Path
    document_kind: _DOCUMENT_KIND | None = None


class Procedure(_Strict):
    """One administrative procedure: who runs it, under which law, and what it may read.

    `fields` maps top-level canonical paths (`Citizen.permanentResidence`) to their
    basis. A field of `SENSITIVE_FIELDS` may have the basis `law` only as a `FieldRule`
    citing the law that requires it. Every path of `papers_replaced` and every form
    path's top-level field must be one of `fields`.

    Validated with a context `{"canonical": tree}` (the tree of
    `schema.canonical_fields()`), every path must also exist in the canonical schema.
    """

    code: str
    code_status: Literal["confirmed", "unconfirmed", "provisional"]
    name: Name
    agency_kinds: tuple[AgencyKind, ...] = Field(min_length=1)
    legal_basis: tuple[LegalBasis, ...] = Field(min_length=1)
    online_level: Literal["full", "partial"]
    fields: dict[str, _FieldBasis] = Field(min_length=1)
    hidden_access_allowed: bool = False
    consents_reusable_across_cases: bool = False
    """A citizen's consent, given for one case, also covers the client's other cases."""
    retention_days: int | None = Field(default=None, gt=0)
    officer_disclosure: Literal["name", "role"] = "role"
    case_confirmation: CaseConfirmation = CaseConfirmation.NONE
    """Whether the case must be a dossier the dossier registry confirms before any read:
    `required` refuses what it cannot confirm, `optional` records what it could not,
    `none` looks nothing up."""
    papers_replaced: tuple[Paper, ...] = ()
    form: tuple[FormField, ...] = ()

    @field_validator("code", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"write the code in quotes: YAML reads {value!r} as a number")
        return value

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not (_NATIONAL_CODE.fullmatch(value) or _LOCAL_CODE.fullmatch(value)):
            raise ValueError(
                f"not a procedure code: {value!r}; expected the national form d.dddddd "
                "(a province may add a suffix, as in 1.012753.H19) or LOCAL.<slug>"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[_Loc, str, Any]] = []
        local = self.code.startswith("LOCAL.")
        if local and self.code_status != "provisional":
            problems.append(
                (
                    ("code_status",),
                    f"a LOCAL.* code is provisional, not {self.code_status}: only codes of "
                    "the national procedure database are confirmed or unconfirmed",
                    self.code_status,
                )
            )
        elif not local and self.code_status == "provisional":
            problems.append(
                (
                    ("code_status",),
                    "only LOCAL.* codes are provisional; a national code is confirmed "
                    "(as published) or unconfirmed (from third-party copies)",
                    self.code_status,
                )
            )
        for i, kind in enumerate(self.agency_kinds):
            if kind in self.agency_kinds[:i]:
                problems.append((("agency_kinds", i), f"{kind} is listed twice", kind))
        for key, rule in self.fields.items():
            if not _TOP_PATH.fullmatch(key):
                problems.append(
                    (("fields", key), f"not a top-level canonical path (Type.field): {key!r}", key)
                )
            elif key in SENSITIVE_FIELDS and rule is Basis.LAW:
                problems.append(
                    (
                        ("fields", key),
                        f"{key} is sensitive data (Decree 13/2023/ND-CP Art. 2(4)) and is never "
                        "read by law alone: write {basis: law, citation: ...} naming the "
                        "provision that requires it, or use consent",
                        rule,
                    )
                )
        filters = [
            (("papers_replaced", i), p.document_kind, p.fields)
            for i, p in enumerate(self.papers_replaced)
        ]
        filters += [(("form", i), f.document_kind, (f.path,)) for i, f in enumerate(self.form)]
        for loc, document_kind, paths in filters:
            if document_kind is None:
                continue
            if _DOCUMENT_FILTER not in self.fields:
                problems.append(
                    (
                        (*loc, "document_kind"),
                        f"reading documents of a kind needs {_DOCUMENT_FILTER} among the fields",
                        document_kind,
                    )
                )
            for path in paths:
                if not path.startswith("Document."):
                    problems.append(
                        (
                            (*loc, "document_kind"),
                            f"{path}: only Document paths are read by document kind",
                            document_kind,
                        )
                    )
        for i, paper in enumerate(self.papers_replaced):
            for j, path in enumerate(paper.fields):
                if path not in self.fields:
                    problems.append(
                        (
                            ("papers_replaced", i, "fields", j),
                            f"{path} is not one of this procedure's fields",
                            path,
                        )
                    )
        names: dict[str, int] = {}
        for i, item in enumerate(self.form):
            if item.name in names:
                problems.append(
                    (
                        ("form", i, "name"),
                        f"form field {item.name!r} is already defined at form[{names[item.name]}]",
                        item.name,
                    )
                )
            names.setdefault(item.name, i)
            if _top(item.path) not in self.fields:
                problems.append(
                    (
                        ("form", i, "path"),
                        f"{item.path}: {_top(item.path)} is not one of this procedure's fields",
                        item.path,
                    )
                )
        if problems:
            _invalid(problems)
        return self

    @model_validator(mode="after")
    def _canonical(self, info: ValidationInfo) -> Self:
        context = info.context if isinstance(info.context, Mapping) else {}
        canonical = context.get("canonical")
        if canonical is None:
            return self
        problems: list[tuple[_Loc, str, Any]] = []
        paths: list[tuple[_Loc, str]] = [(("fields", key), key) for key in self.fields]
        paths += [
            (("papers_replaced", i, "fields", j), path)
            for i, paper in enumerate(self.papers_replaced)
            for j, path in enumerate(paper.fields)
        ]
        paths += [(("form", i, "path"), item.path) for i, item in enumerate(self.form)]
        for loc, path in paths:
            why = _not_canonical(path, canonical)
            if why is not None:
                problems.append((loc, why, path))
        if problems:
            _invalid(problems)
        return self

    def basis(self, path: str) -> Basis | None:
        """The basis on which this procedure may read `path`; `None` when it may not.

        A deeper path (`Citizen.permanentResidence.wardName`) is governed by its
        top-level field.
        """
        rule = self.fields.get(_top(path))
        if rule is None or isinstance(rule, Basis):
            return rule
        return rule.basis


def _invalid(problems: list[tuple[_Loc, str, Any]]) -> NoReturn:
    """Raise the problems as one `ValidationError`, each at its own location.

    A `ValidationError` raised in a model validator keeps its locations, so the
    document reader can point at the offending key instead of the whole file.
    """
    raise ValidationError.from_exception_data(
        "Procedure",
        [
            InitErrorDetails(
                type=PydanticCustomError("procedure", "{reason}", {"reason": reason}),
                loc=loc,
                input=value,
            )
            for loc, reason, value in problems
        ],
    )


def _not_canonical(path: str, canonical: Mapping[str, Any]) -> str | None:
    """Why `path` is not in the canonical field tree, or `None` when it is."""
    kind, *parts = path.split(".")
    if kind not in canonical:
        return f"{path}: {kind} is not a canonical type ({', '.join(sorted(canonical))})"
    tree: Mapping[str, Any] | None = canonical[kind]
    where = kind
    for part in parts:
        if tree is None:
            return f"{path}: {where} is a scalar, it has no field {part!r}"
        if part not in tree:
            return f"{path}: {where} has no field {part!r}"
        tree = tree[part]
        where = f"{where}.{part}"
    return None


def _version(procedures: Iterable[Procedure]) -> str:
    entries = [p.model_dump(mode="json") for p in sorted(procedures, key=lambda p: p.code)]
    return hashlib.sha256(rfc8785.dumps(entries)).hexdigest()


class Catalogue:
    """The procedures the gateway knows, by code, and the version naming them all.

    Immutable. `version` is the lowercase hex SHA-256 of the RFC 8785 canonical JSON of
    every entry (as `model_dump(mode="json")`), sorted by code: the same rules give the
    same version whatever the file names, key order or YAML style.
    """

    __slots__ = ("_procedures", "_version")

    _procedures: Mapping[str, Procedure]
    _version: str

    def __init__(self, procedures: Iterable[Procedure]) -> None:
        by_code: dict[str, Procedure] = {}
        for procedure in sorted(procedures, key=lambda p: p.code):
            if procedure.code in by_code:
                raise ValueError(f"procedure code {procedure.code!r} appears twice")
            by_code[procedure.code] = procedure
        object.__setattr__(self, "_procedures", MappingProxyType(by_code))
        object.__setattr__(self, "_version", _version(by_code.values()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def procedures(self) -> Mapping[str, Procedure]:
        """Every procedure by code, sorted by code."""
        return self._procedures

    @property
    def version(self) -> str:
        """SHA-256 of the canonical catalogue; recorded with every decision."""
        return self._version

    def get(self, code: str) -> Procedure:
        """The procedure with `code`; `UnknownProcedure` when there is none."""
        try:
            return self._procedures[code]
        except KeyError:
            raise UnknownProcedure(
                f"No procedure {code!r} in the catalogue.", procedure=code
            ) from None

    def basis(self, code: str, path: str) -> Basis | None:
        """The basis on which procedure `code` may read `path`; `None` when it may not.

        Raises `UnknownProcedure` when `code` is not in the catalogue.
        """
        return self.get(code).basis(path)

    def __len__(self) -> int:
        return len(self._procedures)

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self._procedures.values())

    def __contains__(self, code: object) -> bool:
        return code in self._procedures

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} procedures, version={self._version[:12]}…)"


def _key_line(path: Path, loc: _Loc) -> int | None:
    """The 1-based line of the key (or item) at `loc` in the YAML or JSON file `path`.

    For a mapping key the line of the key itself, so a field whose rule spans several
    lines is reported where its name is written.
    """
    try:
        node: yaml.Node | None = yaml.compose(
            path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader
        )
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return line
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _check_canonical(path: Path, procedure: Procedure, canonical: Mapping[str, Any]) -> None:
    # `load_config_file` validates without a context, so the canonical check runs here:
    # the same validator, fed the entry just read, with the file re-read for the line.
    try:
        Procedure.model_validate(
            procedure.model_dump(mode="json"), context={"canonical": canonical}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CatalogueError(
            path, f"{where}: {first['msg']}{more}", line=_key_line(path, loc)
        ) from exc


def load_catalogue(
    directory: Path | None = None, *, canonical: Mapping[str, Mapping[str, Any]] | None = None
) -> Catalogue:
    """Read every procedure file (`*.yaml`, `*.yml`, `*.json`) in `directory`.

    Args:
        directory: Where the procedure files are; by default `policies/catalogue/`.
        canonical: The canonical field tree (`schema.canonical_fields()`); when given,
            every path the catalogue names must exist in it.

    Returns:
        The catalogue of every procedure read.

    Raises:
        CatalogueError: A file cannot be read or is invalid, two files share a code, a
            path is not canonical, or the directory holds no procedure at all. The
            error names the file and, where there is one, the line.
    """
    directory = CATALOGUE_DIR if directory is None else directory
    files = config_files(directory, error=CatalogueError)
    if not files:
        raise CatalogueError(directory, "no procedure files (*.yaml, *.yml, *.json)")
    seen: dict[str, Path] = {}
    procedures: list[Procedure] = []
    for path in files:
        procedure = load_config_file(
            path, Procedure, error=CatalogueError, what="procedure", ignore_loc=_UNION_TAGS
        )
        if procedure.code in seen:
            raise CatalogueError(
                path,
                f"code {procedure.code!r} is already used by {seen[procedure.code]}",
                line=_key_line(path, ("code",)),
            )
        if canonical is not None:
            _check_canonical(path, procedure, canonical)
        seen[procedure.code] = path
        procedures.append(procedure)
    catalogue = Catalogue(procedures)
    log.info("catalogue_loaded", procedures=len(catalogue), version=catalogue.version)
    return catalogue
