"""Citizens' questions about an access, and auditors' answers to them.

A question is an `admin` record of outcome `citizen_question` (written by the citizen's
pages): its envelope names the system asked about, its sealed personal part the citizen,
the access and the text. An answer is an `admin` record of outcome
`citizen_question_answered`: its envelope names the question (its record id), the
auditor's pseudonym and organisation, never the text nor the person; its personal part,
sealed under the citizen's key, holds the person, the answer and the auditor's id. A
question is answered once an answer names it.

Listing questions reads envelopes only (status, date, system asked); reading one opens
its personal part, a read of personal data the caller records (`auditor_search`).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.records._envelope import EnvelopeBody, read_envelope
from gateway.records._personal import personal_parts
from gateway.records._recorder import Event
from gateway.storage import event_subjects, events

__all__ = [
    "ANSWER_ACTION",
    "QUESTION_OUTCOME",
    "Answer",
    "OpenedQuestion",
    "Question",
    "answer_event",
    "answers_to",
    "citizen_questions",
    "open_question",
    "questions",
]

QUESTION_OUTCOME: Final = "citizen_question"
"""The outcome (and action) of a citizen's question (`gateway.web._citizen_pages`)."""
ANSWER_ACTION: Final = "citizen_question_answered"
"""The outcome (and action) of an auditor's answer to a question."""
_LIST_MAX: Final = 500


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer's record: when, by which organisation's auditor, and its text if read."""

    id: str
    question: str
    ts: datetime.datetime
    auditor_org: str | None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Question:
    """A question as its envelope tells it, with its answers' records."""

    id: str
    ts: datetime.datetime
    client_id: str | None
    answers: tuple[Answer, ...] = ()

    @property
    def answered(self) -> bool:
        """Whether an answer names it."""
        return bool(self.answers)


@dataclass(frozen=True, slots=True)
class OpenedQuestion:
    """A question with its personal part read: the person, the access and the text."""

    question: Question
    subject: str
    access: str
    text: str


def _question_rows(start: datetime.datetime, end: datetime.datetime) -> sa.Select[Any]:
    return sa.select(events.c.id, events.c.ts, events.c.client_id).where(
        events.c.type == "admin",
        events.c.outcome == QUESTION_OUTCOME,
        events.c.ts >= start,
        events.c.ts < end,
    )


async def answers_to(
    conn: AsyncConnection, ids: Sequence[str], since: datetime.datetime
) -> dict[str, list[Answer]]:
    """The answers' records (envelopes only) to the questions `ids`, asked from `since` on."""
    if not ids:
        return {}
    wanted = set(ids)
    query = (
        sa.select(events.c.id, events.c.ts, events.c.envelope)
        .where(
            events.c.type == "admin",
            events.c.outcome == ANSWER_ACTION,
            events.c.ts >= since,
        )
        .order_by(events.c.ts)
    )
    found: dict[str, list[Answer]] = {}
    for row in await conn.execute(query):
        envelope: dict[str, Any] = dict(read_envelope(row.envelope))
        question = envelope.get("question")
        if question in wanted:
            found.setdefault(question, []).append(
                Answer(row.id, question, row.ts, envelope.get("auditorOrg"))
            )
    return found


async def questions(
    conn: AsyncConnection, start: datetime.datetime, end: datetime.datetime
) -> list[Question]:
    """The questions asked in `[start, end)`, newest first (at most 500), with answers."""
    rows = (
        await conn.execute(_question_rows(start, end).order_by(events.c.ts.desc()).limit(_LIST_MAX))
    ).all()
    answers = await answers_to(conn, [r.id for r in rows], start)
    return [Question(r.id, r.ts, r.client_id, tuple(answers.get(r.id, ()))) for r in rows]


async def open_question(conn: AsyncConnection, event_id: str) -> OpenedQuestion | None:
    """One question with its personal part read (any named person's key opens it).

    `None` when no question has this id, or its part no longer opens (forgotten).
    """
    row = (
        await conn.execute(
            sa.select(events.c.id, events.c.ts, events.c.client_id).where(
                events.c.id == event_id,
                events.c.type == "admin",
                events.c.outcome == QUESTION_OUTCOME,
            )
        )
    ).first()
    if row is None:
        return None
    part = (await personal_parts(conn, [row.id])).get(row.id)
    personal = None if part is None else part.value()
    if not personal or not isinstance(personal.get("subject"), str):
        return None
    answered = (await answers_to(conn, [row.id], row.ts)).get(row.id, [])
    texts = await _answer_texts(conn, [a.id for a in answered], personal["subject"])
    question = Question(
        row.id,
        row.ts,
        row.client_id,
        tuple(Answer(a.id, a.question, a.ts, a.auditor_org, texts.get(a.id)) for a in answered),
    )
    return OpenedQuestion(
        question, personal["subject"], str(personal.get("access")), str(personal.get("question"))
    )


async def _answer_texts(conn: AsyncConnection, ids: Sequence[str], subject: str) -> dict[str, str]:
    parts = await personal_parts(conn, ids, subject=subject)
    texts = {}
    for event_id, part in parts.items():
        value = part.value()
        if value and isinstance(value.get("answer"), str):
            texts[event_id] = value["answer"]
    return texts


async def citizen_questions(
    conn: AsyncConnection, subject: str, access: str
) -> list[dict[str, Any]]:
    """The citizen's questions about one access, oldest first, each with its answers.

    Read through the citizen's own entries of the subject index, opened with their key:
    `{"id", "time", "question", "answers": [{"time", "answer", "auditorOrg"}]}`.
    """
    rows = (
        await conn.execute(
            sa.select(events.c.id, events.c.ts, events.c.outcome, events.c.envelope)
            .select_from(events)
            .join(
                event_subjects,
                sa.and_(
                    event_subjects.c.event_id == events.c.id,
                    event_subjects.c.subject == subject,
                ),
            )
            .where(
                events.c.type == "admin",
                events.c.outcome.in_((QUESTION_OUTCOME, ANSWER_ACTION)),
            )
            .order_by(events.c.ts, events.c.id)
        )
    ).all()
    parts = await personal_parts(conn, [r.id for r in rows], subject=subject)
    asked: dict[str, dict[str, Any]] = {}
    for row in rows:
        personal = (part.value() if (part := parts.get(row.id)) else None) or {}
        if row.outcome == QUESTION_OUTCOME and personal.get("access") == access:
            asked[row.id] = {
                "id": row.id,
                "time": row.ts,
                "question": personal.get("question"),
                "answers": [],
            }
    for row in rows:
        if row.outcome != ANSWER_ACTION:
            continue
        envelope: dict[str, Any] = dict(read_envelope(row.envelope))
        question = asked.get(envelope.get("question", ""))
        personal = (part.value() if (part := parts.get(row.id)) else None) or {}
        if question is not None and isinstance(personal.get("answer"), str):
            question["answers"].append(
                {
                    "time": row.ts,
                    "answer": personal["answer"],
                    "auditorOrg": envelope.get("auditorOrg"),
                }
            )
    return list(asked.values())


def answer_event(
    *,
    request_id: str,
    policy_version: str,
    question: Question,
    subject: str,
    answer: str,
    auditor: str,
    auditor_pseudonym: str,
    auditor_org: str | None,
) -> Event:
    """The `admin` record of an auditor's answer to a question.

    The envelope names the question and the auditor (pseudonym, organisation); the
    person, the answer and the auditor's id are in the part sealed under the person's key.
    """
    envelope = cast(
        EnvelopeBody,
        {
            "action": ANSWER_ACTION,
            "question": question.id,
            "auditor": auditor_pseudonym,
            "auditorOrg": auditor_org,
        },
    )
    return Event(
        type="admin",
        request_id=request_id,
        outcome=ANSWER_ACTION,
        policy_version=policy_version,
        envelope=envelope,
        personal={"subject": subject, "answer": answer, "auditor": auditor},
        subjects=[subject],
        client_id=question.client_id,
    )
