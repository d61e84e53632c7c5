"""What a request keeps of its sources' evidence for its access record: little, in order."""

from __future__ import annotations

from connectors import FetchContext
from schema import EVIDENCE_KEPT, Evidence, RequestContext
from schema._context import Access

HASHES = "xroadRequestHashes"


def test_evidence_is_kept_per_source_and_kind_in_the_order_it_came() -> None:
    evidence = Evidence()
    assert not evidence
    assert evidence.recorded() == {}
    evidence.add("insurance", HASHES, "b==")
    evidence.add("civil-status", HASHES, "z==")
    evidence.add("insurance", HASHES, "a==")
    assert evidence
    assert evidence.recorded() == {
        "civil-status": {HASHES: ["z=="]},
        "insurance": {HASHES: ["b==", "a=="]},
    }


def test_beyond_the_limit_items_are_counted_not_kept() -> None:
    evidence = Evidence()
    for n in range(EVIDENCE_KEPT + 7):
        evidence.add("insurance", HASHES, f"h{n}")
    evidence.add("insurance", "other", "x" * 513)  # too long to be a hash: counted
    evidence.add("land", HASHES, "only")
    recorded = evidence.recorded()
    assert recorded["insurance"] == {
        HASHES: [f"h{n}" for n in range(EVIDENCE_KEPT)],
        "omitted": {HASHES: 7, "other": 1},
    }
    assert recorded["land"] == {HASHES: ["only"]}  # no `omitted` when nothing was


def test_the_request_hands_its_evidence_to_every_fetch_it_makes() -> None:
    ctx = RequestContext(
        registry=None,  # type: ignore[arg-type]
        fetch=FetchContext(request_id="r-1"),
        max_batch=10,
        access=Access(client_id="c", agency_kinds=frozenset(), purpose=None, policy=None),  # type: ignore[arg-type]
    )
    assert ctx.fetch.evidence is ctx.evidence
    assert ctx.fetch.request_id == "r-1"
    assert ctx.fetch.evidence is not None
    ctx.fetch.evidence.add("insurance", HASHES, "h==")
    assert ctx.evidence.recorded() == {"insurance": {HASHES: ["h=="]}}
