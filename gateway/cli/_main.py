"""The `gateway` command.

gateway serve                 run the gateway (settings from GATEWAY_* variables)
gateway demo                  sandbox agencies + gateway + query page, on this machine
gateway db upgrade            apply database migrations
gateway db current            show the database's revision
gateway schema export         write schema/schema.graphql (--check: fail if stale)
gateway keys generate         a new signing key per purpose (rotation), missing secrets
gateway keys show             print the public keys (JWKS, checkpoint verifier keys)
gateway keys rotate-kek       a new key-encryption key; stored secrets re-wrapped under it
gateway audit verify          verify the access log (database, or --url for a gateway)
gateway audit verify-export F check an auditor's export offline (signature, proofs)
gateway audit verify-proof F  check a citizen's access receipt offline
gateway audit forget ID       forget a person whose records' retention is over
gateway audit retention       clear personal parts past their retention now (as scheduled)
gateway log integrate         run the sequencer once, until the queue is empty
gateway log check             compare the log with what was published of it (file, witnesses)
gateway log declare-loss      record lost leaves; the log continues in its next epoch
gateway backup --to F         copy the database; print the log's newest checkpoint in it
gateway restore --from F      restore the database from a backup (--force: not empty)
gateway connectors check DIR  validate connector manifests (--connect: reach each source)
gateway connectors schema     write connectors/manifest.schema.json (--check: fail if stale)
gateway connectors list       show the connectors recorded in the database
gateway connectors validate F check one manifest file offline
gateway connectors submit F   register a manifest through the admin API (also approve,
                              rollback, disable, history, dry-run; --url, --token)
gateway catalogue list        the procedures of the catalogue and its version
gateway catalogue export DIR  a stored version (the one in effect) as procedure files
gateway clients ...           register clients and keys; suspend; list
gateway token ...             sign a request token with a local client key
gateway staff token ...       sign in as staff at the sandbox issuer
gateway citizen token ...     sign in as a citizen at the sandbox issuer
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import ValidationError

from gateway.cli._audit import add_audit_commands
from gateway.cli._backup import add_backup_commands
from gateway.cli._clients import add_client_commands
from gateway.cli._common import DEMO_ISSUER_PORT, print_json, settings_from_environment
from gateway.cli._connectors import add_connector_commands
from gateway.cli._identity import add_identity_commands
from gateway.config import ConfigurationError, GatewaySettings

__all__ = ["main"]

REDIS_WAIT = 3.0
"""Seconds `serve --workers` waits for Redis to answer before refusing to start."""


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.logconfig import configure_logging
    from gateway.web import preflight, tune_collector

    settings = settings_from_environment(host=args.host, port=args.port)
    if args.workers > 1:
        _require_shared_state(settings)
    configure_logging(level=settings.log_level, json=settings.log_json)
    app = asyncio.run(preflight(settings))
    if args.workers > 1:
        uvicorn.run(
            "gateway.web:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            access_log=False,
            log_config=None,
        )
    else:
        tune_collector()
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,
            log_config=None,
        )
    return 0


def _require_shared_state(settings: GatewaySettings) -> None:
    """Several workers share the database and Redis, or they must not start.

    Each worker would otherwise keep its own replay cache and limits: a token spent at
    one worker would be taken again at another, and each would allow the full rate.
    """
    if settings.is_sqlite:
        raise ConfigurationError(
            "the embedded SQLite database serves one process: use --workers 1, or PostgreSQL"
        )
    if settings.redis_url is None:
        raise ConfigurationError(
            "several workers need Redis (GATEWAY_REDIS_URL) for the replay cache and rate limits"
        )
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    async def ping(url: str) -> None:
        redis = Redis.from_url(url, socket_connect_timeout=REDIS_WAIT, socket_timeout=REDIS_WAIT)
        try:
            await redis.ping()
        finally:
            await redis.aclose()

    try:
        asyncio.run(ping(settings.redis_url.get_secret_value()))
    except (RedisError, OSError, TimeoutError) as exc:
        # The URL is not repeated: it may hold a password.
        raise ConfigurationError(
            f"several workers need Redis for the replay cache and rate limits, and the "
            f"Redis of GATEWAY_REDIS_URL does not answer ({type(exc).__name__})"
        ) from exc


def _demo(args: argparse.Namespace) -> int:
    from gateway.cli._demo import Demo

    return Demo(
        port=args.port,
        population_port=args.population_port,
        business_port=args.business_port,
        insurance_port=args.insurance_port,
        civil_port=args.civil_port,
        dossiers_port=args.dossiers_port,
        witness_port=args.witness_port,
        notify_port=args.notify_port,
        issuer_port=args.issuer_port,
        citizens=args.citizens,
    ).run()


def _db_upgrade(args: argparse.Namespace) -> int:
    from gateway.storage import create_engine, upgrade

    settings = settings_from_environment()

    async def run() -> None:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await upgrade(engine, args.revision)
        finally:
            await engine.dispose()

    asyncio.run(run())
    sys.stdout.write(f"database at {args.revision}\n")
    return 0


def _db_current(_args: argparse.Namespace) -> int:
    from gateway.storage import create_engine, current_revision, head_revision

    settings = settings_from_environment()

    async def run() -> str | None:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current, head = asyncio.run(run()), head_revision()
    sys.stdout.write(f"current: {current or 'none'}\nhead:    {head}\n")
    return 0 if current == head else 1


def _export(args: argparse.Namespace, default: Path, text: str, command: str) -> int:
    """Write a checked-in generated file, or with `--check` say whether it is current."""
    target = Path(args.output) if args.output else default
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"{target} is stale: run `{command}`\n")
            return 1
        sys.stdout.write(f"{target} is up to date\n")
        return 0
    target.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


def _schema_export(args: argparse.Namespace) -> int:
    from schema import SDL_PATH, export_sdl

    return _export(args, SDL_PATH, export_sdl(), "gateway schema export")


def _keys_generate(args: argparse.Namespace) -> int:
    from gateway.resources import make_secrets
    from keys import PURPOSES, KekRing, KeyRing

    settings = settings_from_environment()
    made = KeyRing.generate(settings.keys_dir, args.purpose or PURPOSES)
    for key in made:
        sys.stdout.write(f"{key.purpose}\t{key.kid}\n")
    # The secrets too (production makes none on its own); never printed, never replaced.
    for name, new in make_secrets(settings):
        state = "secret made" if new else "secret kept (it is never replaced)"
        sys.stdout.write(f"{name}\t{state}\n")
    # The key-encryption key of stored connector secrets: made once, then rotated apart.
    keks = KekRing.load(settings.keys_dir)
    if keks:
        kept = keks.newest().kek_id
        sys.stdout.write(f"kek\t{kept}\tkept (rotate it with `gateway keys rotate-kek`)\n")
    else:
        sys.stdout.write(f"kek\t{KekRing.generate(settings.keys_dir).kek_id}\tmade\n")
    return 0


def _keys_rotate_kek(args: argparse.Namespace) -> int:
    settings = settings_from_environment()
    return asyncio.run(_rotate_kek(settings, retire_old=args.retire_old))


async def _rotate_kek(settings: GatewaySettings, *, retire_old: bool) -> int:
    from gateway.storage import create_engine, keks_in_use, require_head, rewrap_secrets
    from keys import KekRing

    engine = create_engine(settings.database_url.get_secret_value())
    try:
        await require_head(engine)
        made = KekRing.generate(settings.keys_dir)
        # Replicas open data keys under any KEK of the folder: they serve on meanwhile.
        ring = KekRing.load(settings.keys_dir)
        rewrapped = await rewrap_secrets(engine, ring)
        sys.stdout.write(f"kek\t{made.kek_id}\tmade: wraps new secrets\n")
        sys.stdout.write(f"rewrapped\t{rewrapped}\n")
        if retire_old:
            in_use = await keks_in_use(engine)
            for kek_id in ring.ids[:-1]:
                if in_use.get(kek_id):
                    sys.stdout.write(f"kek\t{kek_id}\tkept: {in_use[kek_id]} secrets use it\n")
                else:
                    KekRing.retire(settings.keys_dir, kek_id)
                    sys.stdout.write(f"kek\t{kek_id}\tretired\n")
    finally:
        await engine.dispose()
    return 0


def _keys_show(_args: argparse.Namespace) -> int:
    from keys import KeyRing, verifier_key

    settings = settings_from_environment()
    ring = KeyRing.load(settings.keys_dir)
    origin = settings.checkpoint_origin
    notes = [verifier_key(origin, k.public) for k in reversed(ring.verifying("checkpoints"))]
    print_json({"checkpointVerifierKeys": notes, "jwks": ring.jwks()})
    return 0


def _connectors_check(args: argparse.Namespace) -> int:
    from connectors import check_kind, check_manifest, connector_kinds, load_manifests
    from schema import connector_fields

    # As `serve` checks them: the schema, and a kind some installed plug-in provides.
    canonical, installed = connector_fields(), connector_kinds()
    manifests = load_manifests(Path(args.directory))
    for manifest in manifests:
        check_manifest(manifest, canonical)
        check_kind(manifest, installed)
    if args.connect:
        settings = settings_from_environment()
        return asyncio.run(_connect(manifests, settings))
    for manifest in manifests:
        kinds = ", ".join(manifest.entities)
        sys.stdout.write(f"ok\t{manifest.name}\t{manifest.kind}\t{kinds}\n")
    return 0


async def _connect(manifests: Sequence[Any], settings: GatewaySettings) -> int:
    """Open each connector as `serve` does (secrets, schema) and ask its health."""
    from connectors import ManifestError, build_registry, source_client, stored_refs
    from gateway.storage import create_engine, stored_secrets
    from schema import connector_fields

    urls, own = settings.connector_urls, settings.database_url.get_secret_value()
    stored: dict[tuple[str, str], str] = {}
    if any(stored_refs(m) for m in manifests):
        # Secrets stored through the API are in the gateway's database, opened with its KEKs.
        engine = create_engine(own)
        try:
            stored = await stored_secrets(engine, settings.keys_dir)
        finally:
            await engine.dispose()
    failed = 0
    async with source_client("httpcore") as http:
        for manifest in manifests:
            try:
                registry = build_registry(
                    [manifest],
                    http=http,
                    canonical=connector_fields(),
                    url_overrides={k: v for k, v in urls.items() if k == manifest.name},
                    reserved=[own],
                    stored_secrets=stored,
                )
                try:
                    await registry.open()
                    health = (await registry.health())[manifest.name]
                finally:
                    await registry.aclose()
            except ManifestError as exc:
                failed += 1
                sys.stdout.write(f"failed\t{manifest.name}\t{manifest.kind}\t{exc}\n")
                continue
            state = "ok" if health.ok else "unhealthy"
            failed += 0 if health.ok else 1
            latency = f"{health.latency_ms:.0f} ms" if health.latency_ms is not None else "-"
            sys.stdout.write(
                f"{state}\t{manifest.name}\t{manifest.kind}\t{health.detail}\t{latency}\n"
            )
    return 1 if failed else 0


def _connectors_schema(args: argparse.Namespace) -> int:
    from connectors import SCHEMA_PATH, manifest_schema_text

    return _export(args, SCHEMA_PATH, manifest_schema_text(), "gateway connectors schema")


def _connectors_list(_args: argparse.Namespace) -> int:
    from gateway.storage import create_engine, list_connectors, require_head

    settings = settings_from_environment()

    async def run() -> list[dict[str, Any]]:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)  # a database never migrated: say what to run
            return await list_connectors(engine)
        finally:
            await engine.dispose()

    print_json(asyncio.run(run()))
    return 0


def _catalogue_export(args: argparse.Namespace) -> int:
    """The stored version as the files the catalogue folder holds: one YAML file a
    procedure; reading the folder back gives the same policy version."""
    import yaml

    from gateway.errors import Conflict
    from gateway.records import CatalogueVersions, catalogue_of
    from gateway.storage import create_engine, require_head
    from policies import load_catalogue
    from schema import canonical_fields

    settings = settings_from_environment()
    folder: Path = args.folder
    if folder.exists() and any(folder.iterdir()):
        raise Conflict(f"{folder} is not empty: export into a new or empty folder.")

    async def run() -> Any:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            versions = CatalogueVersions(engine, pseudonym_key=b"", canonical=canonical_fields())
            found = await (versions.get(args.version) if args.version else versions.in_effect())
        finally:
            await engine.dispose()
        if found is None:
            raise Conflict("No catalogue is recorded yet: start the gateway once.")
        return found

    found = asyncio.run(run())
    catalogue_of(found.entries, canonical_fields())  # checked before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    for entry in found.entries:
        text = yaml.safe_dump(entry, allow_unicode=True, sort_keys=False, width=100)
        (folder / f"{entry['code']}.yaml").write_text(text, encoding="utf-8")
    again = load_catalogue(folder, canonical=canonical_fields())
    if again.version != found.version:  # never expected: the files would say otherwise
        raise Conflict(
            f"The files written read back as {again.version}, not {found.version}.",
            version=found.version,
        )
    sys.stdout.write(
        f"exported {len(found.entries)} procedures of version {found.version} "
        f"({found.status}) to {folder}; read back, they give the same version\n"
    )
    return 0


def _catalogue_list(_args: argparse.Namespace) -> int:
    from gateway.resources import load_procedures

    catalogue = load_procedures(settings_from_environment())
    for procedure in catalogue:
        sys.stdout.write(
            f"{procedure.code}\t{procedure.code_status}\t{procedure.name.en}"
            f"\t{','.join(procedure.agency_kinds)}\n"
        )
    sys.stdout.write(f"policy version {catalogue.version}\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Data-sharing gateway: purpose-bound GraphQL over agencies' databases.",
        epilog="Settings come from GATEWAY_* environment variables or a .env file.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: Any, name: str, handler: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    serve = command(sub, "serve", _serve, "run the gateway")
    serve.add_argument("--host", help="listen address (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: GATEWAY_PORT or 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")

    demo = command(sub, "demo", _demo, "run sandbox agencies, the gateway and its query page")
    demo.add_argument("--port", type=int, default=8000, help="gateway port (default: 8000)")
    demo.add_argument("--population-port", type=int, default=8101)
    demo.add_argument("--business-port", type=int, default=8102)
    demo.add_argument("--insurance-port", type=int, default=8104)
    demo.add_argument("--civil-port", type=int, default=8105)
    demo.add_argument("--dossiers-port", type=int, default=8106)
    demo.add_argument("--witness-port", type=int, default=8107)
    demo.add_argument("--notify-port", type=int, default=8108)
    demo.add_argument("--issuer-port", type=int, default=DEMO_ISSUER_PORT)
    demo.add_argument("--citizens", type=int, default=10_000, help="synthetic citizens")

    db = sub.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    up = command(db, "upgrade", _db_upgrade, "apply migrations (GATEWAY_DATABASE_URL)")
    up.add_argument("--revision", default="head")
    command(db, "current", _db_current, "show the revision; exit 1 unless at head")

    schema = sub.add_parser("schema", help="the canonical schema").add_subparsers(
        dest="schema_command", required=True, metavar="COMMAND"
    )
    export = command(schema, "export", _schema_export, "write the SDL")
    export.add_argument("--output", help="file to write (default: schema/schema.graphql)")
    export.add_argument("--check", action="store_true", help="fail if the file is stale")

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(
        dest="keys_command", required=True, metavar="COMMAND"
    )
    gen = command(
        keys,
        "generate",
        _keys_generate,
        "add a new signing key per purpose (it signs from now on) and make the secrets "
        "and the key-encryption key that are missing (kept once made)",
    )
    gen.add_argument("--purpose", action="append", help="only this purpose (repeatable)")
    command(keys, "show", _keys_show, "print the public keys: JWKS and checkpoint verifier keys")
    rotate = command(
        keys,
        "rotate-kek",
        _keys_rotate_kek,
        "make a new key-encryption key and re-wrap every stored secret's data key under it",
    )
    rotate.add_argument(
        "--retire-old",
        action="store_true",
        help="then delete each older KEK that no stored secret uses any more",
    )

    conns = sub.add_parser("connectors", help="connector manifests").add_subparsers(
        dest="connectors_command", required=True, metavar="COMMAND"
    )
    check = command(conns, "check", _connectors_check, "validate the manifests in DIR")
    check.add_argument("directory")
    check.add_argument(
        "--connect",
        action="store_true",
        help="also open each connector as serve does (read its secrets, a database's schema) "
        "and ask the source's health; GATEWAY_CONNECTOR_URLS applies",
    )
    command(
        conns,
        "list",
        _connectors_list,
        "connectors recorded in the database: status, version, organisation, pending versions",
    )
    schema_of = command(
        conns, "schema", _connectors_schema, "write the JSON Schema of manifests, for editors"
    )
    schema_of.add_argument("--output", help="default: connectors/manifest.schema.json")
    schema_of.add_argument("--check", action="store_true", help="fail if the file is stale")
    add_connector_commands(conns, command)

    catalogue = sub.add_parser("catalogue", help="the procedure catalogue").add_subparsers(
        dest="catalogue_command", required=True, metavar="COMMAND"
    )
    command(catalogue, "list", _catalogue_list, "procedures, codes and the policy version")
    export = command(
        catalogue,
        "export",
        _catalogue_export,
        "write a stored version of the catalogue (the one in effect) as procedure files",
    )
    export.add_argument("folder", type=Path, help="where to write (a new or empty folder)")
    export.add_argument("--version", help="the policy version to export (default: in effect)")

    add_audit_commands(sub, command)
    add_backup_commands(sub, command)
    add_client_commands(sub, command, settings_from_environment)
    add_identity_commands(sub, command)
    return parser


_REPORTED: Final = (
    # (module, exception): failures a command reports in one line, exit status 2. Each
    # is looked up only if its module was loaded: a command that never imported it
    # cannot have raised it, and `gateway token` need not import the connectors.
    ("connectors", "ManifestError"),
    ("policies", "CatalogueError"),
    ("gateway.storage", "DatabaseNotReady"),
    ("keys", "KeyRingError"),
    ("keys", "NoteError"),
    ("keys", "SecretSealError"),
)


def _loaded(module: str, name: str) -> type[BaseException] | None:
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _report(exc: BaseException) -> int | None:
    """Write a command's failure as one line on standard error: 2, or `None` if not ours."""
    from gateway.errors import GatewayError

    if isinstance(exc, ConfigurationError) or any(
        kind is not None and isinstance(exc, kind) for kind in (_loaded(*r) for r in _REPORTED)
    ):
        sys.stderr.write(f"gateway: {exc}\n")
        return 2
    if isinstance(exc, GatewayError):
        detail = f" {orjson.dumps(exc.detail).decode()}" if exc.detail else ""
        sys.stderr.write(f"gateway: {exc.code}: {exc.message}{detail}\n")
        return 2
    if isinstance(exc, ValidationError):
        sys.stderr.write(f"gateway: invalid settings:\n{exc}\n")
        return 2
    if isinstance(exc, OSError):
        if exc.filename is not None:
            # A file the command reads or writes (a key, a manifest, a body): say which.
            sys.stderr.write(f"gateway: {exc.strerror or type(exc).__name__}: {exc.filename}\n")
            return 2
        sys.stderr.write(f"gateway: the database cannot be used: {type(exc).__name__}\n")
        return 2
    database_error = _loaded("sqlalchemy.exc", "SQLAlchemyError")
    if database_error is not None and isinstance(exc, database_error):
        # Unreachable or misnamed database: one line, never the URL (it may hold a password).
        sys.stderr.write(f"gateway: the database cannot be used: {type(exc).__name__}\n")
        return 2
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from gateway.logconfig import configure_logging

    args = _parser().parse_args(argv)
    # Standard output is the command's answer alone: its logs go to standard error,
    # warnings and errors only (`serve` sets its own from GATEWAY_LOG_LEVEL).
    configure_logging(level="warning", json=False)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        status = _report(exc)
        if status is None:
            raise
        return status


if __name__ == "__main__":
    raise SystemExit(main())
