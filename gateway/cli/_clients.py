"""`gateway clients ...` and `gateway token`: the client registry from the command line.

gateway clients add VN/GOV/<org>/<system> --name ... --organisation ... --kind KIND
gateway clients keys add CLIENT (--jwk FILE | --pem FILE | --generate [--alg ES256])
gateway clients keys revoke CLIENT -- KID   (`--`: a thumbprint may begin with '-')
gateway clients suspend CLIENT | activate CLIENT
gateway clients list
gateway token --client C --procedure P --case K --officer O --subject S --body FILE
              [--hidden-until DATE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from joserfc.jwk import ECKey, OKPKey

from gateway.config import GatewaySettings
from policies import AgencyKind

if TYPE_CHECKING:
    from gateway.records import AdminRecorder

__all__ = ["add_client_commands"]

T = TypeVar("T")


def _run(settings: GatewaySettings, work: Callable[[Any], Awaitable[T]]) -> T:
    from gateway.admission import ClientRegistry
    from gateway.storage import create_engine, require_head

    async def run() -> T:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            return await work(ClientRegistry(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _out(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _read_jwk(args: argparse.Namespace) -> dict[str, Any]:
    if args.jwk:
        data = orjson.loads(Path(args.jwk).read_bytes())
        if not isinstance(data, dict):
            raise SystemExit("gateway: the JWK file holds one JSON object")
        return data
    pem = Path(args.pem).read_bytes()
    key: OKPKey | ECKey
    try:
        key = OKPKey.import_key(pem)
    except (ValueError, TypeError):
        key = ECKey.import_key(pem)
    if key.is_private:
        raise SystemExit("gateway: give the public key only; this PEM holds a private key")
    return key.as_dict(private=False)


def cli_actor() -> str:
    """Who a change made from this command line is recorded as: `cli:<OS user>`.

    The account that ran the command (`cli:unknown` when the system cannot name it). Its
    pseudonym is in the `admin` record's envelope, like an operator's, and the name
    itself in the personal part; a command line has no organisation.
    """
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError, ImportError):
        return "cli:unknown"


def _cli_recorder(settings: GatewaySettings) -> AdminRecorder:
    """The `admin` events of the changes made from this command line (see `cli_actor`)."""
    from gateway.records import admin_recorder
    from gateway.resources import load_procedures, load_pseudonym_key

    return admin_recorder(
        pseudonym_key=load_pseudonym_key(settings),
        policy_version=load_procedures(settings).version,
        operator=cli_actor(),
        operator_org=None,
    )


def add_client_commands(
    sub: Any,
    command: Callable[..., argparse.ArgumentParser],
    settings: Callable[[], GatewaySettings],
) -> None:
    """Add `clients` and `token` to the `gateway` command line."""

    def add(args: argparse.Namespace) -> int:
        s = settings()
        record = _cli_recorder(s)
        client = _run(
            s,
            lambda reg: reg.add(
                args.client,
                name=args.name,
                organisation=args.organisation,
                agency_kinds=args.kind,
                record=record,
            ),
        )
        _out({"id": client.id, "agencyKinds": sorted(client.agency_kinds), "status": client.status})
        return 0

    def keys_add(args: argparse.Namespace) -> int:
        from gateway.admission import add_local_key

        s = settings()
        record = _cli_recorder(s)
        if args.generate:
            # The private key is kept under the kid registered, so `gateway token`
            # signs with a kid the gateway knows.
            _, kid = _run(
                s,
                lambda reg: add_local_key(
                    reg, s.client_keys_dir, args.client, record=record, alg=args.alg, kid=args.kid
                ),
            )
            _out({"client": args.client, "kid": kid, "alg": args.alg})
            return 0
        jwk = _read_jwk(args)
        key = _run(s, lambda reg: reg.add_key(args.client, jwk, kid=args.kid, record=record))
        _out({"client": key.client_id, "kid": key.kid, "alg": key.alg})
        return 0

    def keys_revoke(args: argparse.Namespace) -> int:
        s = settings()
        record = _cli_recorder(s)
        _run(s, lambda reg: reg.revoke_key(args.client, args.kid, record=record))
        _out({"client": args.client, "kid": args.kid, "status": "revoked"})
        return 0

    def status(value: str) -> Callable[[argparse.Namespace], int]:
        def change(args: argparse.Namespace) -> int:
            s = settings()
            record = _cli_recorder(s)
            client = _run(s, lambda reg: reg.set_status(args.client, value, record=record))
            _out({"id": client.id, "status": client.status})
            return 0

        return change

    def listing(_args: argparse.Namespace) -> int:
        _out(_run(settings(), lambda reg: reg.list()))
        return 0

    def token(args: argparse.Namespace) -> int:
        from gateway.admission import load_local_key, sign_request
        from gateway.instants import parse_instant
        from policies import Purpose

        s = settings()
        hidden = (
            None
            if args.hidden_until is None
            else parse_instant(args.hidden_until, "--hidden-until")
        )
        body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
        key, kid = load_local_key(s.client_keys_dir, args.client, args.kid)
        purpose = Purpose(
            args.procedure, args.case, args.officer, tuple(args.subject or ()), hidden
        )
        sys.stdout.write(
            sign_request(
                client_id=args.client,
                key=key,
                kid=kid,
                audience=args.audience or s.origin,
                body=body,
                purpose=purpose,
                ttl=args.ttl,
            )
            + "\n"
        )
        return 0

    clients = sub.add_parser("clients", help="case-handling systems allowed to call")
    csub = clients.add_subparsers(dest="clients_command", required=True, metavar="COMMAND")
    p = command(csub, "add", add, "register a client (active at once)")
    p.add_argument("client", help="VN/GOV/<org>/<system>")
    p.add_argument("--name", required=True)
    p.add_argument("--organisation", required=True)
    p.add_argument(
        "--kind",
        action="append",
        required=True,
        help=f"agency kind (repeatable), one of: {', '.join(k.value for k in AgencyKind)}",
    )
    keys = csub.add_parser("keys", help="a client's public keys")
    ksub = keys.add_subparsers(dest="client_keys_command", required=True, metavar="COMMAND")
    p = command(ksub, "add", keys_add, "register a public key of a client")
    p.add_argument("client")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwk", help="file with the public JWK")
    source.add_argument("--pem", help="file with the public key in PEM")
    source.add_argument(
        "--generate", action="store_true", help="make a key pair here (demo, tests)"
    )
    p.add_argument("--alg", default="EdDSA", choices=["EdDSA", "ES256"])
    p.add_argument("--kid", help="key id (default: the JWK's, or its RFC 7638 thumbprint)")
    p = command(ksub, "revoke", keys_revoke, "stop accepting a key")
    p.add_argument("client")
    p.add_argument("kid", help="the key's id; put -- before it if it begins with '-'")
    for name, value in (("suspend", "suspended"), ("activate", "active")):
        p = command(csub, name, status(value), f"{name} a client (effective at once)")
        p.add_argument("client")
    command(csub, "list", listing, "clients and their keys")

    p = command(sub, "token", token, "sign a request token with a local client key")
    p.add_argument("--client", required=True)
    p.add_argument("--procedure", required=True, help="catalogue code, e.g. 1.004222")
    p.add_argument("--case", required=True)
    p.add_argument("--officer", required=True)
    p.add_argument("--subject", action="append", help="personal id or enterprise code")
    p.add_argument("--body", required=True, help="file with the exact request body, or -")
    p.add_argument("--kid", help="which local key (default: the newest)")
    p.add_argument("--ttl", type=int, default=120, help="seconds, at most 300")
    p.add_argument("--audience", help="default: GATEWAY_ORIGIN")
    p.add_argument(
        "--hidden-until",
        help="hide the access from its subjects until this date or date-time "
        "(only where the procedure allows it)",
    )
