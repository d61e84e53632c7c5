"""Traces of real requests on each backend: the spans a request makes, the caller's
trace continued, and no personal data anywhere in any span."""

from __future__ import annotations

import datetime
import json

from opentelemetry.sdk.trace import ReadableSpan

RESIDENCE = "1.004222"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def _text(span: ReadableSpan) -> str:
    """Everything a span carries that an exporter sends, as text."""
    return json.dumps(
        {
            "name": span.name,
            "attributes": dict(span.attributes or {}),
            "events": [(e.name, dict(e.attributes or {})) for e in span.events],
            "links": [dict(link.attributes or {}) for link in span.links],
            "status": span.status.description,
            "resource": dict(span.resource.attributes),
        },
        ensure_ascii=False,
        default=str,
    )


async def test_traced_requests_carry_no_personal_data(gateway, dataset, spans) -> None:
    people = dataset.sample.citizens[:3]
    officer, case = "officer-trace-7", "HS-TRACE-2026-0042"
    purpose = {"procedure": RESIDENCE, "officer": officer, "case": case}
    one = (
        f'{{ citizen(personalId: "{people[0]}") {{ fullName phone'
        " household { householdId head { fullName } } } }"
    )
    many = "query($ids: [String!]!) { citizens(personalIds: $ids) { fullName birthDate } }"
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat()
    consent = """mutation($s: String!, $u: DateTime!) { requestConsent(subject: $s,
      procedure: "1.004222", fields: ["Citizen.phone"], validUntil: $u) { id } }"""
    outside = f'{{ citizen(personalId: "{people[2]}") {{ fullName }} }}'
    tokens: list[str] = []
    async with gateway.client(**purpose) as http:

        async def post(query: str, variables: dict | None = None, **headers: str) -> None:
            response = await http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.json().get("data"), response.text
            tokens.append(response.request.headers["authorization"].removeprefix("Bearer "))

        await post(one, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
        await post(many, {"ids": people[:2]})
        await post(consent, {"s": people[1], "u": until})
    # A subject outside the case: withheld, and traced all the same.
    response = await gateway.post(outside, subjects=[people[0]], **purpose)
    assert response.json()["errors"][0]["extensions"]["code"] == "SUBJECT_NOT_IN_CASE"
    await gateway.caught_up()

    finished = spans.get_finished_spans()
    names = {s.name for s in finished}
    assert {"request", "admission", "decisions", "source_call", "recording"} <= names
    assert "log_integration" in names
    # The caller's trace goes on: the request span is a child of its span.
    [continued] = [
        s for s in finished if s.name == "request" and s.context.trace_id == int(CALLER_TRACE, 16)
    ]
    assert continued.parent is not None
    assert continued.parent.span_id == int(CALLER_SPAN, 16)
    assert continued.attributes is not None
    assert continued.attributes["http.response.status_code"] == 200
    inside = [s for s in finished if s.context.trace_id == continued.context.trace_id]
    calls = [s for s in inside if s.name == "source_call"]
    assert calls
    # Permanent residence confirms its case where the dossier registry knows it: this
    # case it does not know (a source call of its own, `not_found`); the reads are `ok`.
    lookups = [s for s in calls if s.attributes and s.attributes["gateway.connector"] == "dossiers"]
    assert [s.attributes["gateway.outcome"] for s in lookups] == ["not_found"]
    reads = [s for s in calls if s not in lookups]
    assert reads
    assert all(s.attributes and s.attributes["gateway.outcome"] == "ok" for s in reads)
    assert {s.name for s in inside} >= {"admission", "case_confirmation", "decisions", "recording"}

    secrets = [*dataset.sample.citizens[:3], officer, case, *tokens]
    secrets += [t.split(".")[1] for t in tokens]  # the claims alone, as sent
    for span in finished:
        text = _text(span)
        for secret in secrets:
            assert secret not in text, (span.name, secret[:12])
