"""What every command of the `gateway` command line shares: settings, output, files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

import orjson

from gateway.config import GatewaySettings

__all__ = ["DEMO_ISSUER_PORT", "print_json", "read_file", "settings_from_environment"]

DEMO_ISSUER_PORT: Final = 8103
"""Where `gateway demo` runs the sandbox sign-in issuer, on 127.0.0.1 (`--issuer-port`)."""


def settings_from_environment(**overrides: Any) -> GatewaySettings:
    """`GATEWAY_*` variables and `.env`, with the options given on the command line."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return GatewaySettings(**given)


def print_json(data: Any) -> None:
    """Indented JSON on standard output."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def read_file(path: str) -> bytes:
    """The file's bytes, or exit with one line saying why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"gateway: cannot read {path}: {exc.strerror}") from None
