"""`gateway staff token` and `gateway citizen token`: sign in at the sandbox issuer.

Both ask the sandbox issuer (`python -m sandbox issuer`, no passwords) for an access
token and print it, for `curl -H "Authorization: Bearer $(gateway citizen token ...)"`.
They refuse any other issuer: a real one (VNeID) signs nobody in from a command line.
The issuer is `--issuer`, else `GATEWAY_OIDC_ISSUER`, else the one `gateway demo` runs
when it answers.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import Any, Final

import httpx
import orjson

from gateway.cli._common import DEMO_ISSUER_PORT
from gateway.config import GatewaySettings

__all__ = ["DEMO_ISSUER", "add_identity_commands", "citizen_token", "staff_token"]

_STAFF_ROLES: Final = ("agency_admin", "auditor", "operator", "policy_editor")
_TIMEOUT: Final = 10.0
_PROBE_TIMEOUT: Final = 0.5
_DEFAULT_STAFF: Final = "demo-staff"
_DEFAULT_LEVEL: Final = 2
_START_HINT: Final = "start it with `python -m sandbox issuer`"

DEMO_ISSUER = f"http://127.0.0.1:{DEMO_ISSUER_PORT}"
"""The sandbox issuer of `gateway demo` (`make demo`): the default when it answers."""

Command = Callable[[Any, str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _is_sandbox_issuer(url: str) -> bool:
    """Whether the sandbox issuer answers at `url` (asked briefly: it is local or absent)."""
    try:
        answer = httpx.get(f"{url}/.well-known/openid-configuration", timeout=_PROBE_TIMEOUT)
    except (httpx.HTTPError, httpx.InvalidURL):
        return False
    document = _json(answer)
    return (
        answer.status_code == 200
        and isinstance(document, dict)
        and document.get("sandbox_issuer") is True
    )


def _issuer(args: argparse.Namespace, command: list[str]) -> str:
    issuer = args.issuer or GatewaySettings().oidc_issuer
    if issuer:
        return str(issuer).rstrip("/")
    if _is_sandbox_issuer(DEMO_ISSUER):
        return DEMO_ISSUER
    again = shlex.join(["gateway", *command, "--issuer", DEMO_ISSUER])
    raise ValueError(
        "no issuer: none given (--issuer URL or GATEWAY_OIDC_ISSUER), and the demo's "
        f"sandbox issuer does not answer at {DEMO_ISSUER}. Start the demo (`make demo`) "
        f"or a sandbox issuer (`python -m sandbox issuer`), then run:\n  {again}"
    )


def request_token(
    issuer: str, login: str, body: dict[str, Any], *, client: httpx.Client | None = None
) -> str:
    """An access token from the sandbox issuer's demo `login` (`citizen` or `staff`).

    Raises `ValueError`, with a message for the user, when the issuer does not answer,
    is not the sandbox issuer, or refuses the request.
    """
    owned = client is None
    http = client if client is not None else httpx.Client(timeout=_TIMEOUT)
    try:
        return _request_token(http, issuer, login, body)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ValueError(f"the issuer at {issuer} does not answer ({exc}); {_START_HINT}") from exc
    finally:
        if owned:
            http.close()


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _request_token(http: httpx.Client, issuer: str, login: str, body: dict[str, Any]) -> str:
    discovery = http.get(f"{issuer}/.well-known/openid-configuration")
    document = _json(discovery)
    if (
        discovery.status_code != 200
        or not isinstance(document, dict)
        or document.get("sandbox_issuer") is not True
    ):
        raise ValueError(f"{issuer} is not the sandbox issuer; {_START_HINT}")
    response = http.post(f"{issuer}/demo/{login}-login", json=body)
    answer = _json(response)
    if response.status_code != 200 or not isinstance(answer, dict):
        message = answer.get("message") if isinstance(answer, dict) else None
        raise ValueError(
            f"the sandbox issuer refused ({response.status_code}): {message or response.text}"
        )
    token = answer.get("access_token")
    if not isinstance(token, str):
        raise ValueError(f"{issuer} answered without an access_token")
    return token


def _print_token(
    args: argparse.Namespace, login: str, body: dict[str, Any], command: list[str]
) -> int:
    try:
        token = request_token(_issuer(args, command), login, body)
    except ValueError as exc:
        sys.stderr.write(f"gateway: {exc}\n")
        return 2
    sys.stdout.write(token + "\n")
    return 0


def staff_token(args: argparse.Namespace) -> int:
    """Print a staff access token (`--role`, `--org`, `--sub`) from the sandbox issuer."""
    body = {"sub": args.sub, "roles": list(args.role), "org": args.org}
    command = ["staff", "token", *(w for r in args.role for w in ("--role", r))]
    command += ["--org", args.org]
    if args.sub != _DEFAULT_STAFF:
        command += ["--sub", args.sub]
    return _print_token(args, "staff", body, command)


def citizen_token(args: argparse.Namespace) -> int:
    """Print a citizen access token (`--personal-id`, `--level`) from the sandbox issuer."""
    body = {"personal_id": args.personal_id, "level": args.level}
    command = ["citizen", "token", "--personal-id", args.personal_id]
    if args.level != _DEFAULT_LEVEL:
        command += ["--level", str(args.level)]
    return _print_token(args, "citizen", body, command)


def add_identity_commands(sub: Any, command: Command) -> None:
    """Add `staff token` and `citizen token` to the `gateway` command's subparsers."""
    issuer_help = (
        f"sandbox issuer URL (default: GATEWAY_OIDC_ISSUER, else the demo's, {DEMO_ISSUER}, "
        "when it runs)"
    )

    staff = sub.add_parser("staff", help="staff sign-in (sandbox issuer)").add_subparsers(
        dest="staff_command", required=True, metavar="COMMAND"
    )
    token = command(staff, "token", staff_token, "print a staff token from the sandbox issuer")
    token.add_argument(
        "--role", action="append", required=True, choices=_STAFF_ROLES, help="repeatable"
    )
    token.add_argument("--org", required=True, help="organisation, VN/GOV/<org>")
    token.add_argument(
        "--sub", default=_DEFAULT_STAFF, help=f"name or id (default: {_DEFAULT_STAFF})"
    )
    token.add_argument("--issuer", help=issuer_help)

    citizen = sub.add_parser("citizen", help="citizen sign-in (sandbox issuer)").add_subparsers(
        dest="citizen_command", required=True, metavar="COMMAND"
    )
    token = command(
        citizen, "token", citizen_token, "print a citizen token from the sandbox issuer"
    )
    token.add_argument("--personal-id", required=True, dest="personal_id", help="12 digits")
    token.add_argument(
        "--level",
        type=int,
        choices=(1, 2),
        default=_DEFAULT_LEVEL,
        help=f"VNeID level (default: {_DEFAULT_LEVEL})",
    )
    token.add_argument("--issuer", help=issuer_help)
