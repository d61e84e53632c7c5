"""Admission: who may ask, and whether this request may go on.

A request is admitted when its token was signed by a registered client's key, for
this gateway, this exact body and a well-formed purpose, and has not been used before
(`RequestVerifier`); then the client's and the officer's rate limits apply, its case
is confirmed by the dossier registry where its procedure asks it (`Cases`), and the
consents in force for its subjects are at hand for the decisions (`Admission`). Staff
and citizens sign in with an OpenID Connect issuer (`IdentityVerifier`). The client
registry, the replay cache and the rate limiters live here too.

Below the web room, above records: admission records what it refused.
"""

from gateway.admission._admission import (
    Admission,
    Admitted,
    ConsentsInForce,
    EventSink,
    Limits,
)
from gateway.admission._cases import (
    CaseCheck,
    Cases,
    Confirmation,
    client_organisation,
    same_procedure,
)
from gateway.admission._client_changes import ClientChange, ClientChanges, UrlCheck
from gateway.admission._clients import (
    CLIENT_ID,
    CachedClients,
    Client,
    ClientKey,
    ClientRegistry,
    public_jwk,
    reachable,
)
from gateway.admission._identity import (
    CITIZEN_ROLE,
    STAFF_ROLES,
    Identity,
    IdentityVerifier,
)
from gateway.admission._local_keys import (
    add_local_key,
    generate_local_key,
    has_local_key,
    load_local_key,
)
from gateway.admission._published_keys import PublishedKeys
from gateway.admission._ratelimit import Limit, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from gateway.admission._replay import MemoryReplayCache, RedisReplayCache, ReplayCache, Spent
from gateway.admission._tokens import (
    MAX_LIFETIME,
    SKEW,
    TOKEN_TYPE,
    ClientLookup,
    RejectedRequest,
    RequestVerifier,
    VerifiedRequest,
    body_digest,
    sign_request,
)

__all__ = [
    "CITIZEN_ROLE",
    "CLIENT_ID",
    "MAX_LIFETIME",
    "SKEW",
    "STAFF_ROLES",
    "TOKEN_TYPE",
    "Admission",
    "Admitted",
    "CachedClients",
    "CaseCheck",
    "Cases",
    "Client",
    "ClientChange",
    "ClientChanges",
    "ClientKey",
    "ClientLookup",
    "ClientRegistry",
    "Confirmation",
    "ConsentsInForce",
    "EventSink",
    "Identity",
    "IdentityVerifier",
    "Limit",
    "Limits",
    "MemoryRateLimiter",
    "MemoryReplayCache",
    "PublishedKeys",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisReplayCache",
    "RejectedRequest",
    "ReplayCache",
    "RequestVerifier",
    "Spent",
    "UrlCheck",
    "VerifiedRequest",
    "add_local_key",
    "body_digest",
    "client_organisation",
    "generate_local_key",
    "has_local_key",
    "load_local_key",
    "public_jwk",
    "reachable",
    "same_procedure",
    "sign_request",
]
