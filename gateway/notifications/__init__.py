"""Notifications: an outbox, a dispatcher that delivers it, and pluggable senders.

What is to be told is written to the outbox (`notifications`) in the transaction of
its cause, or by a job: a citizen of a consent request waiting for their answer
(`consent_requested`), a citizen who opted in of the reads of their data the day
before (`read_digest`), an agency's administrators of a connector whose breaker stays
open (`breaker_open`). The `Dispatcher` delivers it through a `NotificationSender`,
one replica at a time, at least once, with the notification's id as idempotency key.

Above records (it reads the subject index and the consents), below admission and web.
"""

from gateway.notifications._breakers import BREAKER_OPEN, BreakerWatch
from gateway.notifications._consents import CONSENT_REQUESTED, consent_requested
from gateway.notifications._digest import READ_DIGEST, ReadDigests, enqueue_read_digests
from gateway.notifications._dispatcher import Clock, Dispatcher, Job
from gateway.notifications._outbox import (
    AGENCY,
    CITIZEN,
    Notification,
    RecipientSeal,
    enqueue,
    forget_recipient,
    notification_id,
    read_digest_enabled,
    set_read_digest,
)
from gateway.notifications._senders import Delivery, DeliveryFailed, HttpSender, NotificationSender

__all__ = [
    "AGENCY",
    "BREAKER_OPEN",
    "CITIZEN",
    "CONSENT_REQUESTED",
    "READ_DIGEST",
    "BreakerWatch",
    "Clock",
    "Delivery",
    "DeliveryFailed",
    "Dispatcher",
    "HttpSender",
    "Job",
    "Notification",
    "NotificationSender",
    "ReadDigests",
    "RecipientSeal",
    "consent_requested",
    "enqueue",
    "enqueue_read_digests",
    "forget_recipient",
    "notification_id",
    "read_digest_enabled",
    "set_read_digest",
]
