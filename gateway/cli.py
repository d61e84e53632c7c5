"""The `gateway` command.

gateway serve                 run the gateway (settings from GATEWAY_* variables)
gateway demo                  sandbox agencies + gateway + query page, on this machine
gateway db upgrade            apply database migrations
gateway db current            show the database's revision
gateway schema export         write schema/schema.graphql (--check: fail if stale)
gateway keys generate         add a new signing key per purpose (rotation)
gateway keys show             print the public keys (JWKS, checkpoint verifier keys)
gateway audit verify          verify the access log (database, or --url for a gateway)
gateway audit verify-export F check an auditor's export offline (signature, proofs)
gateway audit verify-proof F  check a citizen's access receipt offline
gateway audit forget ID       forget a person whose records' retention is over
gateway log integrate         run the sequencer once, until the queue is empty
gateway connectors check DIR  validate connector manifests against the schema
gateway connectors list       show the connectors recorded in the database
gateway catalogue list        the procedures of the catalogue and its version
gateway clients ...           register clients and keys; suspend; list
gateway token ...             sign a request token with a local client key
gateway staff token ...       sign in as staff at the sandbox issuer
gateway citizen token ...     sign in as a citizen at the sandbox issuer
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from gateway._cli_clients import add_client_commands
from gateway._cli_identity import add_identity_commands
from gateway.config import ConfigurationError, GatewaySettings

__all__ = ["main"]


def _settings(**overrides: Any) -> GatewaySettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    return GatewaySettings(**given)


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway._logging import configure_logging
    from gateway.app import create_app, preflight

    settings = _settings(host=args.host, port=args.port)
    if args.workers > 1 and settings.is_sqlite:
        raise SystemExit("the embedded SQLite database serves one process: use --workers 1")
    if args.workers > 1 and settings.redis_url is None:
        raise SystemExit(
            "several workers need Redis (GATEWAY_REDIS_URL) for the replay cache and rate limits"
        )
    configure_logging(level=settings.log_level, json=settings.log_json)
    asyncio.run(preflight(settings))
    if args.workers > 1:
        uvicorn.run(
            "gateway.app:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            access_log=False,
            log_config=None,
        )
    else:
        app = create_app(settings)
        # Modules and the schema live as long as the process: keep them out of the
        # collector's full passes, which otherwise stall requests now and then.
        gc.collect()
        gc.freeze()
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,
            log_config=None,
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway._demo import Demo

    return Demo(
        port=args.port,
        population_port=args.population_port,
        business_port=args.business_port,
        issuer_port=args.issuer_port,
        citizens=args.citizens,
    ).run()


def _db_upgrade(args: argparse.Namespace) -> int:
    from gateway.storage import create_engine, upgrade

    settings = _settings()

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

    settings = _settings()

    async def run() -> str | None:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current, head = asyncio.run(run()), head_revision()
    sys.stdout.write(f"current: {current or 'none'}\nhead:    {head}\n")
    return 0 if current == head else 1


def _schema_export(args: argparse.Namespace) -> int:
    from schema import SDL_PATH, export_sdl

    target = Path(args.output) if args.output else SDL_PATH
    sdl = export_sdl()
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != sdl:
            sys.stderr.write(f"{target} is stale: run `gateway schema export`\n")
            return 1
        sys.stdout.write(f"{target} is up to date\n")
        return 0
    target.write_text(sdl, encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    from keys import PURPOSES, KeyRing

    settings = _settings()
    made = KeyRing.generate(settings.keys_dir, args.purpose or PURPOSES)
    for key in made:
        sys.stdout.write(f"{key.purpose}\t{key.kid}\n")
    return 0


def _keys_show(_args: argparse.Namespace) -> int:
    from keys import KeyRing, verifier_key

    settings = _settings()
    ring = KeyRing.load(settings.keys_dir)
    origin = settings.checkpoint_origin
    notes = [verifier_key(origin, k.public) for k in reversed(ring.verifying("checkpoints"))]
    _print_json({"checkpointVerifierKeys": notes, "jwks": ring.jwks()})
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from gateway.accesslog import checkpoint_verifiers, parse_checkpoint
    from gateway.audit import verify_database, verify_remote
    from keys import NoteError, parse_verifier_key

    try:
        trusted = [parse_verifier_key(k) for k in (args.key or "").split(",") if k.strip()]
    except NoteError as exc:
        sys.stderr.write(f"gateway: --key is not a checkpoint verifier key: {exc}\n")
        return 2
    try:
        previous = Path(args.previous).read_text(encoding="utf-8") if args.previous else None
    except OSError as exc:
        sys.stderr.write(f"gateway: cannot read --previous {args.previous}: {exc.strerror}\n")
        return 2
    if args.url:
        report = asyncio.run(verify_remote(args.url, key=args.key, previous=previous))
        sys.stdout.write(f"checked what {args.url} publishes (not its database):\n")
    else:
        from gateway.storage import create_engine
        from keys import KeyRing

        settings = _settings()
        origin = settings.checkpoint_origin
        verifiers = trusted or checkpoint_verifiers(KeyRing.load(settings.keys_dir), origin)
        seen = None
        if previous is not None:
            try:
                seen = parse_checkpoint(previous, verifiers)
            except (NoteError, ValueError) as exc:
                sys.stderr.write(f"gateway: the previous checkpoint does not verify: {exc}\n")
                return 1

        async def run() -> Any:
            engine = create_engine(settings.database_url.get_secret_value())
            try:
                return await verify_database(engine, verifiers, origin=origin, previous=seen)
            finally:
                await engine.dispose()

        report = asyncio.run(run())
        sys.stdout.write("checked the log in the database:\n")
    for item in report.checked:
        sys.stdout.write(f"  ok  {item}\n")
    if report.ok:
        sys.stdout.write("the log verifies\n")
        return 0
    where = f" (first bad index: {report.bad_index})" if report.bad_index is not None else ""
    sys.stderr.write(f"gateway: the log does not verify{where}: {report.problem}\n")
    return 1


def _verifier_keys(given: str | None) -> list[Any]:
    """The checkpoint keys to trust: `--key`, else this machine's key ring."""
    from gateway.accesslog import checkpoint_verifiers
    from keys import KeyRing, parse_verifier_key

    if given:
        return [parse_verifier_key(k.strip()) for k in given.split(",") if k.strip()]
    settings = _settings()
    return checkpoint_verifiers(KeyRing.load(settings.keys_dir), settings.checkpoint_origin)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"gateway: cannot read {path}: {exc.strerror}") from None


def _audit_verify_export(args: argparse.Namespace) -> int:
    from gateway.offline import verify_export

    report = verify_export(_read(args.file).splitlines(), _verifier_keys(args.key))
    if not report.ok or report.checkpoint is None:
        sys.stderr.write(f"gateway: line {report.bad_line} of {args.file}: {report.problem}\n")
        return 1
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(report.types.items())) or "no records"
    sys.stdout.write(
        f"  ok  checkpoint of {report.checkpoint.origin} at size {report.checkpoint.size}\n"
        f"  ok  {report.proven} records proven included ({kinds})\n"
    )
    if report.pending:
        sys.stdout.write(
            f"  --  {report.pending} records not in that checkpoint yet "
            f"(export again against a newer one to prove them)\n"
        )
    sys.stdout.write("the export verifies\n")
    return 0


def _audit_verify_proof(args: argparse.Namespace) -> int:
    from gateway.offline import verify_tlog_proof

    text = _read(args.file).decode("utf-8", errors="replace")
    try:
        proven = verify_tlog_proof(text, _verifier_keys(args.key))
    except ValueError as exc:
        sys.stderr.write(f"gateway: {args.file} does not verify: {exc}\n")
        return 1
    leaf = proven.leaf or {}
    sys.stdout.write(
        f"  ok  leaf {proven.index} is in the checkpoint of {proven.checkpoint.origin} "
        f"at size {proven.checkpoint.size}\n"
        f"  ok  {leaf.get('type')} record of {leaf.get('ts')}, "
        f"envelope {leaf.get('envelope_hash')}\n"
        "the receipt verifies\n"
    )
    return 0


def _audit_forget(args: argparse.Namespace) -> int:
    from gateway._forget import forget
    from gateway.identifiers import PersonalId
    from gateway.storage import create_engine, require_head
    from keys import load_secret
    from policies import load_catalogue
    from schema import canonical_fields

    settings = _settings()
    subject = PersonalId(args.personal_id).value
    catalogue = load_catalogue(settings.catalogue_dir, canonical=canonical_fields())
    production = settings.environment == "production"
    key = load_secret(settings.keys_dir, "pseudonyms", create=not production)

    async def run() -> Any:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            return await forget(
                engine,
                subject,
                catalogue=catalogue,
                default_days=settings.retention_days,
                operator=args.operator,
                pseudonym_key=key,
            )
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    sys.stdout.write(
        f"forgotten: the personal parts of {done.records} records and {done.consents} "
        f"consents are deleted, with the subject key; the envelopes and the log stay "
        f"(record {done.event_id})\n"
    )
    return 0


def _log_integrate(args: argparse.Namespace) -> int:
    from gateway.accesslog import LogIntegrityError, TransparencyLog
    from gateway.storage import create_engine, require_head
    from keys import KeyRing

    settings = _settings()

    async def run() -> int:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            ring = KeyRing.load(settings.keys_dir)
            store = TransparencyLog(engine, ring, origin=settings.checkpoint_origin)
            await store.ensure_checkpoint()
            total, waited = 0, 0.0
            while True:
                done = await store.integrate(max_batch=args.max_batch)
                total += done
                if args.once and done:
                    return total
                if done:
                    waited = 0.0
                    continue
                if not await store.queued():
                    return total
                # Events wait, but another sequencer holds the lock: it integrates them.
                if waited >= args.wait:
                    raise _Busy(total)
                await asyncio.sleep(0.2)
                waited += 0.2
        finally:
            await engine.dispose()

    if args.max_batch < 1:
        sys.stderr.write("gateway: --max-batch must be at least 1\n")
        return 2
    try:
        total = asyncio.run(run())
    except LogIntegrityError as exc:
        sys.stderr.write(f"gateway: nothing integrated: {exc}; run `gateway audit verify`\n")
        return 1
    except _Busy as busy:
        sys.stdout.write(
            f"integrated {busy.total} events; another sequencer holds the log's lock "
            f"and is integrating the rest\n"
        )
        return 0
    sys.stdout.write(f"integrated {total} events\n")
    return 0


class _Busy(Exception):
    def __init__(self, total: int) -> None:
        self.total = total


def _connectors_check(args: argparse.Namespace) -> int:
    from connectors import check_manifest, load_manifests
    from schema import canonical_fields

    canonical = canonical_fields()
    for manifest in load_manifests(Path(args.directory)):
        check_manifest(manifest, canonical)
        kinds = ", ".join(manifest.entities)
        sys.stdout.write(f"ok\t{manifest.name}\t{manifest.kind}\t{kinds}\n")
    return 0


def _connectors_list(_args: argparse.Namespace) -> int:
    from gateway.storage import create_engine, list_connectors

    settings = _settings()

    async def run() -> list[dict[str, Any]]:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            return await list_connectors(engine)
        finally:
            await engine.dispose()

    _print_json(asyncio.run(run()))
    return 0


def _catalogue_list(_args: argparse.Namespace) -> int:
    from policies import load_catalogue
    from schema import canonical_fields

    catalogue = load_catalogue(_settings().catalogue_dir, canonical=canonical_fields())
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
    demo.add_argument("--issuer-port", type=int, default=8103)
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
    gen = command(keys, "generate", _keys_generate, "add a new key (it signs from now on)")
    gen.add_argument("--purpose", action="append", help="only this purpose (repeatable)")
    command(keys, "show", _keys_show, "print the public keys: JWKS and checkpoint verifier keys")

    audit = sub.add_parser("audit", help="the access log").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    verify = command(audit, "verify", _audit_verify, "verify the access log")
    verify.add_argument("--url", help="check a running gateway's public log instead")
    verify.add_argument("--key", help="checkpoint verifier key(s) to trust, comma-separated")
    verify.add_argument(
        "--previous", help="a checkpoint seen before (file): the log must still extend it"
    )

    vexport = command(
        audit, "verify-export", _audit_verify_export, "check an export offline: proofs, signature"
    )
    vexport.add_argument("file", help="the JSON lines of /audit/export")
    vexport.add_argument(
        "--key", help="checkpoint verifier key(s), comma-separated (default: this machine's keys)"
    )
    vproof = command(
        audit, "verify-proof", _audit_verify_proof, "check an access receipt (tlog-proof) offline"
    )
    vproof.add_argument("file", help="a receipt from /me/accesses/{id}/receipt")
    vproof.add_argument(
        "--key", help="checkpoint verifier key(s), comma-separated (default: this machine's keys)"
    )
    forgetp = command(
        audit,
        "forget",
        _audit_forget,
        "forget a person: delete their personal parts and subject key once retention is over",
    )
    forgetp.add_argument("personal_id", help="the person's 12-digit personal id")
    forgetp.add_argument("--operator", required=True, help="your operator id (recorded)")

    logp = sub.add_parser("log", help="the verifiable log's sequencer").add_subparsers(
        dest="log_command", required=True, metavar="COMMAND"
    )
    integrate = command(logp, "integrate", _log_integrate, "integrate queued events now")
    integrate.add_argument("--max-batch", type=int, default=4096)
    integrate.add_argument("--once", action="store_true", help="one batch only")
    integrate.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait while another sequencer holds the lock (default 10)",
    )

    conns = sub.add_parser("connectors", help="connector manifests").add_subparsers(
        dest="connectors_command", required=True, metavar="COMMAND"
    )
    check = command(conns, "check", _connectors_check, "validate the manifests in DIR")
    check.add_argument("directory")
    command(conns, "list", _connectors_list, "connectors recorded in the database")

    catalogue = sub.add_parser("catalogue", help="the procedure catalogue").add_subparsers(
        dest="catalogue_command", required=True, metavar="COMMAND"
    )
    command(catalogue, "list", _catalogue_list, "procedures, codes and the policy version")

    add_client_commands(sub, command, _settings)
    add_identity_commands(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from connectors import ManifestError
    from gateway.errors import GatewayError
    from gateway.storage import DatabaseNotReady
    from keys import KeyRingError, NoteError
    from policies import CatalogueError

    args = _parser().parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (
        ManifestError,
        CatalogueError,
        DatabaseNotReady,
        KeyRingError,
        NoteError,
        ConfigurationError,
    ) as exc:
        sys.stderr.write(f"gateway: {exc}\n")
        return 2
    except GatewayError as exc:
        detail = f" {orjson.dumps(exc.detail).decode()}" if exc.detail else ""
        sys.stderr.write(f"gateway: {exc.code}: {exc.message}{detail}\n")
        return 2
    except ValidationError as exc:
        sys.stderr.write(f"gateway: invalid settings:\n{exc}\n")
        return 2
    except (OSError, SQLAlchemyError) as exc:
        # Unreachable or misnamed database: one line, never the URL (it may hold a password).
        sys.stderr.write(f"gateway: the database cannot be used: {type(exc).__name__}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
