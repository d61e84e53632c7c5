"""A consent request waiting for the citizen's answer: the citizen is told of it.

Written in the transaction that stores the request (`ConsentStore.request`'s
`on_request`): a request that is not stored tells nobody, and one that is stored is
told, after a restart too. The notification names the consent, the system asking
(a public client id, and its organisation's name), the procedure and how many items of
data, and when to answer by; never the case, nor which data.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.instants import format_instant
from gateway.notifications._outbox import Notification, RecipientSeal
from policies import ORGANISATION_NAMES, Catalogue, Consent, UnknownProcedure

__all__ = ["CONSENT_REQUESTED", "consent_requested"]

CONSENT_REQUESTED: Final = "consent_requested"


def consent_requested(seal: RecipientSeal, consent: Consent, catalogue: Catalogue) -> Notification:
    """The notification of a consent request to the citizen it asks."""
    parts = consent.consumer.split("/")
    names = ORGANISATION_NAMES.get("/".join(parts[:3])) if len(parts) >= 3 else None
    payload: dict[str, Any] = {
        "consent": consent.id,
        "consumer": consent.consumer,
        "consumerName": {"vi": names[0], "en": names[1]} if names else None,
        "procedure": consent.procedure,
        "procedureName": None,
        "fieldCount": len(consent.fields),
        "answerBy": format_instant(consent.answer_by),
    }
    try:
        entry = catalogue.get(consent.procedure)
        payload["procedureName"] = {"vi": entry.name.vi, "en": entry.name.en}
    except UnknownProcedure:
        pass
    return Notification.to_citizen(seal, consent.subject, CONSENT_REQUESTED, consent.id, payload)
