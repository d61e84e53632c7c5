"""A client for case-handling systems calling the lienthong data-sharing gateway.

It signs each request to the gateway's token contract, follows the gateway's rules
for failure, and returns data, field errors, provenance and the signed receipt as
typed objects. It imports nothing of the gateway's server code.
"""

from lienthong_client._answers import (
    Answer,
    FieldError,
    GatewayError,
    Provenance,
    Receipt,
    Refused,
    RequestInvalid,
    Unavailable,
)
from lienthong_client._client import AsyncGatewayClient, GatewayClient
from lienthong_client._receipts import ReceiptKeys, verify_receipt
from lienthong_client._tokens import MAX_LIFETIME, TOKEN_TYPE, Purpose, Signer, body_digest

__all__ = [
    "MAX_LIFETIME",
    "TOKEN_TYPE",
    "Answer",
    "AsyncGatewayClient",
    "FieldError",
    "GatewayClient",
    "GatewayError",
    "Provenance",
    "Purpose",
    "Receipt",
    "ReceiptKeys",
    "Refused",
    "RequestInvalid",
    "Signer",
    "Unavailable",
    "body_digest",
    "verify_receipt",
]
