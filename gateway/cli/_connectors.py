"""`gateway connectors ...`: validate a manifest offline, and register one through /admin.

    gateway connectors validate FILE           parse and check against the schema, offline
    gateway connectors submit FILE             a new pending version (agency_admin)
    gateway connectors approve NAME VERSION    make it serve (a platform operator, not the
                                               submitter)
    gateway connectors rollback NAME VERSION   a new pending version with VERSION's manifest
    gateway connectors disable NAME            stop serving it
    gateway connectors history NAME            every version, who submitted and approved it
    gateway connectors dry-run NAME VERSION --key K   call the source, report the mapping

The commands that change something are calls to the gateway's admin API (`--url`,
default the settings' origin) with a staff token (`--token`, or `GATEWAY_STAFF_TOKEN`):
the gateway checks the role, the organisation and the four eyes, exactly as for any
other caller. `gateway staff token` gets one from the sandbox issuer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from gateway.cli._common import print_json, settings_from_environment

__all__ = ["add_connector_commands"]

_TIMEOUT = 60.0
# The name of the variable holding the token, not a token.
TOKEN_VARIABLE = "GATEWAY_STAFF_TOKEN"  # noqa: S105  # nosec B105

Command = Callable[..., argparse.ArgumentParser]


def _validate(args: argparse.Namespace) -> int:
    from connectors import check_kind, check_manifest, connector_kinds, load_manifest
    from schema import connector_fields

    manifest = load_manifest(Path(args.file))
    check_manifest(manifest, connector_fields())
    check_kind(manifest, connector_kinds())
    sys.stdout.write(f"ok\t{manifest.name}\t{manifest.kind}\t{', '.join(manifest.entities)}\n")
    return 0


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    token = args.token or os.environ.get(TOKEN_VARIABLE)
    if not token:
        sys.stderr.write(
            f"gateway: give a staff token with --token or {TOKEN_VARIABLE} "
            "(`gateway staff token --role agency_admin --org VN/GOV/...` in the sandbox)\n"
        )
        return 2
    url = (args.url or settings_from_environment().origin).rstrip("/")
    try:
        with httpx.Client(base_url=url, timeout=_TIMEOUT, trust_env=False) as http:
            response = http.request(
                method,
                path,
                content=None if body is None else orjson.dumps(body),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                },
            )
    except httpx.HTTPError as exc:
        sys.stderr.write(f"gateway: the gateway at {url} does not answer ({exc})\n")
        return 2
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.is_success:
        print_json(answer)
        return 0
    if isinstance(answer, dict) and "code" in answer:
        detail = f" {orjson.dumps(answer['detail']).decode()}" if answer.get("detail") else ""
        sys.stderr.write(
            f"gateway: {response.status_code} {answer['code']}: {answer.get('message')}{detail}\n"
        )
    else:
        sys.stderr.write(f"gateway: {response.status_code}: {response.text[:500]}\n")
    return 1


def _read_manifest(path: str) -> dict[str, Any]:
    """The manifest file as data, checked first so that errors name its line."""
    from connectors import load_manifest

    load_manifest(Path(path))
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    # Through JSON: what YAML reads that JSON lacks (dates) travels as text.
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(data, default=str))
    return {k: v for k, v in loaded.items() if not str(k).startswith("x-")}


def _submit(args: argparse.Namespace) -> int:
    return _call(args, "POST", "/admin/connectors", {"manifest": _read_manifest(args.file)})


def _approve(args: argparse.Namespace) -> int:
    return _call(args, "POST", f"/admin/connectors/{args.name}/versions/{args.version}/approve")


def _rollback(args: argparse.Namespace) -> int:
    return _call(args, "POST", f"/admin/connectors/{args.name}/rollback", {"version": args.version})


def _disable(args: argparse.Namespace) -> int:
    return _call(args, "POST", f"/admin/connectors/{args.name}/disable")


def _history(args: argparse.Namespace) -> int:
    return _call(args, "GET", f"/admin/connectors/{args.name}")


def _dry_run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"key": args.key}
    if args.entity:
        body["entity"] = args.entity
    return _call(
        args, "POST", f"/admin/connectors/{args.name}/versions/{args.version}/dry-run", body
    )


def _remote(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--url", help="the gateway (default: GATEWAY_ORIGIN)")
    parser.add_argument("--token", help=f"a staff access token (default: {TOKEN_VARIABLE})")
    return parser


def add_connector_commands(conns: Any, command: Command) -> None:
    """Add `validate`, `submit`, `approve`, `rollback`, `disable`, `history`, `dry-run`."""
    validate = command(conns, "validate", _validate, "check one manifest file, offline")
    validate.add_argument("file")
    submit = _remote(
        command(conns, "submit", _submit, "submit a manifest file: a new pending version")
    )
    submit.add_argument("file")
    approve = _remote(
        command(conns, "approve", _approve, "approve a pending version (a platform operator)")
    )
    approve.add_argument("name")
    approve.add_argument("version", type=int)
    rollback = _remote(
        command(conns, "rollback", _rollback, "submit an earlier version's manifest again")
    )
    rollback.add_argument("name")
    rollback.add_argument("version", type=int)
    disable = _remote(command(conns, "disable", _disable, "stop serving a connector"))
    disable.add_argument("name")
    history = _remote(
        command(conns, "history", _history, "a connector's versions, status and last dry run")
    )
    history.add_argument("name")
    dry = _remote(
        command(conns, "dry-run", _dry_run, "call the source of a version with a sample key")
    )
    dry.add_argument("name")
    dry.add_argument("version", type=int)
    dry.add_argument("--key", required=True, help="the sample key (never shown back)")
    dry.add_argument("--entity", help="only this entity kind (default: each)")
