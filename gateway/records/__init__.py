"""Records: every access, consent, admin action and auditor search, and what reads them.

An event is stored in two parts (the envelope, with no personal data, whose hash the
verifiable log publishes; and the personal part), with a private index of the subjects
it concerns. `EventRecorder` commits events before any answer leaves (fail closed,
shared commits). The consent store keeps consents and records every change to them.
Auditors search and export the records (`SearchFilter`), citizens see their own
(`citizen_items`), auditors read the sources' evidence of one access
(`record_evidence`) and patterns worth a look (`patterns`) and answer citizens'
questions (`questions`, `answer_event`), operators read the figures (`figures`, by
day `daily_figures`), people are forgotten after retention (`forget`), personal parts
past their retention are cleared on schedule (`clear_expired`), and `verify_database`
checks the stored records and their log.

Above the log's core, the log store and the database; below admission and the web.
"""

from gateway.records._catalogue_versions import (
    CatalogueVersion,
    CatalogueVersions,
    StaffMember,
    catalogue_in_effect,
    catalogue_of,
)
from gateway.records._citizen_view import CITIZEN_VISIBLE_TYPES, citizen_items
from gateway.records._consents import (
    CONSENT_TYPE,
    ClientConsentRequests,
    ConsentStore,
    OnRequest,
    Recorder,
    consent_event,
    detach,
    verify_signed,
)
from gateway.records._envelope import (
    ENVELOPE_VERSION,
    DecisionEntry,
    Envelope,
    EnvelopeBody,
    envelope_hash,
    read_envelope,
)
from gateway.records._evidence import RecordEvidence, record_evidence
from gateway.records._figures import (
    INTROSPECTION,
    count_access,
    count_consent,
    count_refusal,
    daily_figures,
    figures,
    is_procedure_request,
)
from gateway.records._forget import (
    FORGET_ACTION,
    Forgotten,
    forget,
    records_digest,
    retention_of,
)
from gateway.records._loss import LOSS_ACTION, DeclaredLoss, declare_loss
from gateway.records._patterns import (
    REFUSAL_CODES,
    BusyOfficer,
    OutsideHours,
    Patterns,
    PatternSettings,
    Refusals,
    SharedSubject,
    patterns,
    subject_handle,
    subject_of_handle,
)
from gateway.records._personal import PersonalPart, personal_parts
from gateway.records._questions import (
    ANSWER_ACTION,
    QUESTION_OUTCOME,
    Answer,
    OpenedQuestion,
    Question,
    answer_event,
    answers_to,
    citizen_questions,
    open_question,
    questions,
)
from gateway.records._recorder import (
    AdminRecorder,
    Event,
    EventRecorder,
    admin_event,
    admin_recorder,
    commitment,
    consent_commitment,
    insert_events,
    pseudonym,
    pseudonyms,
)
from gateway.records._retention import (
    RETENTION_ACTION,
    RETENTION_OUTCOME,
    Cleared,
    RetentionSchedule,
    clear_expired,
    due_records,
)
from gateway.records._search import (
    DECISION_CODES,
    DOSSIER_STATUSES,
    Page,
    SearchFilter,
    all_results,
    decode_cursor,
    encode_cursor,
    page_limit,
    search_page,
    time_range,
)
from gateway.records._verify import verify_database

__all__ = [
    "ANSWER_ACTION",
    "CITIZEN_VISIBLE_TYPES",
    "CONSENT_TYPE",
    "DECISION_CODES",
    "DOSSIER_STATUSES",
    "ENVELOPE_VERSION",
    "FORGET_ACTION",
    "INTROSPECTION",
    "LOSS_ACTION",
    "QUESTION_OUTCOME",
    "REFUSAL_CODES",
    "RETENTION_ACTION",
    "RETENTION_OUTCOME",
    "AdminRecorder",
    "Answer",
    "BusyOfficer",
    "CatalogueVersion",
    "CatalogueVersions",
    "Cleared",
    "ClientConsentRequests",
    "ConsentStore",
    "DecisionEntry",
    "DeclaredLoss",
    "Envelope",
    "EnvelopeBody",
    "Event",
    "EventRecorder",
    "Forgotten",
    "OnRequest",
    "OpenedQuestion",
    "OutsideHours",
    "Page",
    "PatternSettings",
    "Patterns",
    "PersonalPart",
    "Question",
    "RecordEvidence",
    "Recorder",
    "Refusals",
    "RetentionSchedule",
    "SearchFilter",
    "SharedSubject",
    "StaffMember",
    "admin_event",
    "admin_recorder",
    "all_results",
    "answer_event",
    "answers_to",
    "catalogue_in_effect",
    "catalogue_of",
    "citizen_items",
    "citizen_questions",
    "clear_expired",
    "commitment",
    "consent_commitment",
    "consent_event",
    "count_access",
    "count_consent",
    "count_refusal",
    "daily_figures",
    "declare_loss",
    "decode_cursor",
    "detach",
    "due_records",
    "encode_cursor",
    "envelope_hash",
    "figures",
    "forget",
    "insert_events",
    "is_procedure_request",
    "open_question",
    "page_limit",
    "patterns",
    "personal_parts",
    "pseudonym",
    "pseudonyms",
    "questions",
    "read_envelope",
    "record_evidence",
    "records_digest",
    "retention_of",
    "search_page",
    "subject_handle",
    "subject_of_handle",
    "time_range",
    "verify_database",
    "verify_signed",
]
