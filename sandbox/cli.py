"""``python -m sandbox population|business|insurance|civil|dossiers|issuer|witness|notify``,
``sample`` or ``land``: run a sandbox service, print ids, or write the land registry's
database."""

import argparse
import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from sandbox import business, civil, dossiers, insurance, issuer, land, population
from sandbox._data import generate
from sandbox.config import SandboxSettings

# The registries that sign documents, and the setting naming each one's key file.
_SIGNING = {"business": "business_key_file", "civil": "civil_key_file"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Reference agency services with deterministic synthetic data. "
        "Defaults come from SANDBOX_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("population", "serve the population database (citizens, households)"),
        ("business", "serve the business registry (enterprises, signed certificates)"),
        ("insurance", "serve the insurance agency, X-Road style (books, cards, contributions)"),
        ("civil", "serve the civil-status registry, GraphQL (signed certificates)"),
        ("dossiers", "serve the dossier registry of the one-stop shop (cases and their persons)"),
    ):
        serve = commands.add_parser(name, help=helptext)
        serve.add_argument("--host")
        serve.add_argument("--port", type=int)
        _data_options(serve)
        serve.add_argument("--latency-ms", type=float, dest="latency_ms")
        if name in _SIGNING:
            serve.add_argument(
                "--key-file",
                type=Path,
                dest="key_file",
                help="PEM key signing its documents, written when missing (default: per process)",
            )
    sign_in = commands.add_parser(
        "issuer", help="serve the sandbox identity issuer (no passwords: signs for anyone)"
    )
    sign_in.add_argument("--host")
    sign_in.add_argument("--port", type=int, help="default: SANDBOX_ISSUER_PORT or 8103")
    sign_in.add_argument(
        "--key-file", type=Path, dest="key_file", help="PEM key, written when missing"
    )
    notify = commands.add_parser(
        "notify", help="serve a notification channel that keeps what it receives"
    )
    notify.add_argument("--host")
    notify.add_argument("--port", type=int, help="default: SANDBOX_NOTIFY_PORT or 8108")
    notify.add_argument(
        "--store", type=Path, help="a file keeping what it received (default: memory only)"
    )
    witness = commands.add_parser(
        "witness", help="serve a witness that cosigns the log's consistent checkpoints"
    )
    witness.add_argument("--host")
    witness.add_argument("--port", type=int, help="default: SANDBOX_WITNESS_PORT or 8107")
    witness.add_argument("--name", help="its name (default: SANDBOX_WITNESS_NAME)")
    witness.add_argument(
        "--key-file", type=Path, dest="key_file", help="PEM key, written when missing"
    )
    witness.add_argument("--state", type=Path, help="its state file (JSON)")
    witness.add_argument(
        "--log-key",
        action="append",
        dest="log_keys",
        help="a verifier key of a log to witness (repeat; default: SANDBOX_WITNESS_LOG_KEYS)",
    )
    _data_options(commands.add_parser("sample", help="print ids worth querying, as JSON"))
    registry = commands.add_parser(
        "land",
        help="write the land registry (parcels of the same citizens) to a SQLite database",
    )
    registry.add_argument("--database", type=Path, required=True, help="the SQLite file")
    _data_options(registry)
    return parser


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--citizens", type=int)
    parser.add_argument("--seed", type=int)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {
        key: value
        for key in ("citizens", "seed", "host", "latency_ms")
        if (value := getattr(args, key, None)) is not None
    }
    if args.command == "issuer":
        return _serve_issuer(args, overrides)
    if args.command == "witness":
        return _serve_witness(args, overrides)
    if args.command == "notify":
        return _serve_notify(args, overrides)
    if args.command in _SIGNING and args.key_file is not None:
        overrides[_SIGNING[args.command]] = args.key_file
    settings = SandboxSettings(**overrides)
    if args.command == "land":
        return _write_land(args.database, settings)
    if args.command == "sample":
        body = generate(settings).sample.to_json()
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.command == "population":
        app = population.create_app(settings)
        default_port = settings.population_port
    elif args.command == "insurance":
        app = insurance.create_app(settings)
        default_port = settings.insurance_port
    elif args.command == "civil":
        app = civil.create_app(settings)
        default_port = settings.civil_port
    elif args.command == "dossiers":
        app = dossiers.create_app(settings)
        default_port = settings.dossiers_port
    else:
        app = business.create_app(settings)
        default_port = settings.business_port
    # The dataset lives as long as the process: move it out of the collector's reach
    # so full collections do not walk a million objects in the middle of a request.
    gc.collect()
    gc.freeze()
    # Access logs would carry personal ids in request paths, so they stay off.
    uvicorn.run(
        app,
        host=settings.host,
        port=args.port if args.port is not None else default_port,
        access_log=False,
        workers=1,
    )
    return 0


def _write_land(path: Path, settings: SandboxSettings) -> int:
    wanted = land.made_from(settings)
    if land.stored_settings(path) == wanted:
        sys.stdout.write(f"land registry: {path} is up to date ({_made_from(wanted)})\n")
        return 0
    registry = land.build(settings)
    land.write_sqlite(path, registry)
    counts = ", ".join(f"{table} {count}" for table, count in registry.counts().items())
    sys.stdout.write(f"land registry: wrote {path} ({_made_from(wanted)}): {counts}\n")
    return 0


def _made_from(settings: dict[str, Any]) -> str:
    return f"citizens {settings['citizens']}, seed {settings['seed']}"


def _serve_issuer(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    # The port goes into the settings: the default issuer URL (`iss`) is built from it.
    if args.port is not None:
        overrides["issuer_port"] = args.port
    if args.key_file is not None:
        overrides["issuer_key_file"] = args.key_file
    settings = SandboxSettings(**overrides)
    app = issuer.create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.issuer_port, access_log=False, workers=1)
    return 0


def _serve_notify(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from sandbox import notify

    if args.port is not None:
        overrides["notify_port"] = args.port
    settings = SandboxSettings(**overrides)
    if args.store is not None:
        args.store.parent.mkdir(parents=True, exist_ok=True)
    app = notify.create_app(notify.NotificationStore(args.store))
    uvicorn.run(app, host=settings.host, port=settings.notify_port, access_log=False, workers=1)
    return 0


def _serve_witness(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from lienthong_client.log import CheckpointError, NoteError, parse_verifier_key

    from sandbox import witness
    from sandbox._issuer_keys import load_or_create

    for option, setting in (
        ("port", "witness_port"),
        ("name", "witness_name"),
        ("key_file", "witness_key_file"),
        ("state", "witness_state_file"),
        ("log_keys", "witness_log_keys"),
    ):
        if getattr(args, option) is not None:
            overrides[setting] = getattr(args, option)
    settings = SandboxSettings(**overrides)
    logs: dict[str, list[Any]] = {}
    try:
        for text in settings.witness_log_keys:
            verifier = parse_verifier_key(text.strip())
            logs.setdefault(verifier.name, []).append(verifier)
    except (NoteError, CheckpointError) as exc:
        sys.stderr.write(f"sandbox witness: a log key is not a verifier key: {exc}\n")
        return 2
    if not logs:
        sys.stderr.write("sandbox witness: give the key of a log to witness (--log-key)\n")
        return 2
    settings.witness_state_file.parent.mkdir(parents=True, exist_ok=True)
    app = witness.create_app(
        name=settings.witness_name,
        key=load_or_create(settings.witness_key_file).private,
        logs=logs,
        state=witness.WitnessState(settings.witness_state_file),
    )
    uvicorn.run(app, host=settings.host, port=settings.witness_port, access_log=False, workers=1)
    return 0
