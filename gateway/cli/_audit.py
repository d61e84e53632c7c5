"""`gateway audit ...` and `gateway log ...`: verify, export checks, forgetting, the sequencer.

`verify-export` and `verify-proof` need only the log's core and `keys/`: they run on
a machine without the gateway's database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.cli._common import read_file, settings_from_environment
from gateway.cli._continuity import add_continuity_commands, opened_guard

__all__ = ["add_audit_commands"]


def _audit_verify(args: argparse.Namespace) -> int:
    from gateway.log import (
        CheckpointError,
        UnknownCheckpointKey,
        checkpoint_verifiers,
        parse_checkpoint,
    )
    from gateway.log.remote import verify_remote
    from gateway.records import verify_database
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
    try:
        policy = _witness_policy(args)
    except _BadPolicy as exc:
        sys.stderr.write(f"gateway: witness policy: {exc}\n")
        return 2
    if policy is not None and not args.url:
        sys.stderr.write(
            "gateway: a witness policy checks what a gateway publishes: use it with --url "
            "(the database holds the log's own signatures, not what readers were shown)\n"
        )
        return 2
    if args.url:
        report = asyncio.run(
            verify_remote(args.url, key=args.key, previous=previous, policy=policy)
        )
        sys.stdout.write(f"checked what {args.url} publishes (not its database):\n")
    else:
        from gateway.storage import create_engine
        from keys import KeyRing

        settings = settings_from_environment()
        origin = settings.checkpoint_origin
        verifiers = trusted or checkpoint_verifiers(KeyRing.load(settings.keys_dir), origin)
        seen = None
        if previous is not None:
            try:
                seen = parse_checkpoint(previous, verifiers)
            except UnknownCheckpointKey as exc:
                problem = f"the previous checkpoint: {exc}"
                sys.stderr.write(_other_configuration(problem, origin, verifiers, trusted))
                return 2
            except CheckpointError as exc:
                sys.stderr.write(f"gateway: the previous checkpoint does not verify: {exc}\n")
                return 1

        async def run() -> Any:
            engine = create_engine(settings.database_url.get_secret_value())
            try:
                return await verify_database(engine, verifiers, origin=origin, previous=seen)
            finally:
                await engine.dispose()

        report = asyncio.run(run())
        if report.configuration:
            sys.stderr.write(_other_configuration(report.problem, origin, verifiers, trusted))
            return 2
        sys.stdout.write("checked the log in the database:\n")
    for item in report.checked:
        sys.stdout.write(f"  ok  {item}\n")
    if report.ok:
        sys.stdout.write("the log verifies\n")
        return 0
    where = f" (first bad index: {report.bad_index})" if report.bad_index is not None else ""
    sys.stderr.write(f"gateway: the log does not verify{where}: {report.problem}\n")
    return 1


def _other_configuration(
    problem: str | None, origin: str, verifiers: list[Any], given: list[Any]
) -> str:
    """Why the log could not be checked with this configuration, and what to set."""
    keys = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers) or "none"
    source = "from --key" if given else "the checkpoint keys under GATEWAY_KEYS_DIR"
    return (
        f"gateway: the log was not checked: the configuration differs from the one "
        f"that signed it (this is not a sign that the log was changed)\n"
        f"  {problem}\n"
        f"  the configured origin is {origin!r} (GATEWAY_LOG_ORIGIN, or GATEWAY_ORIGIN's "
        f"host and /log); its keys are {keys} ({source})\n"
        f"  run it with the gateway's own GATEWAY_ORIGIN (or GATEWAY_LOG_ORIGIN) and keys\n"
    )


def _verifier_keys(given: str | None) -> list[Any]:
    """The checkpoint keys to trust: `--key`, else this machine's key ring."""
    from gateway.log import checkpoint_verifiers
    from keys import KeyRing, parse_verifier_key

    if given:
        return [parse_verifier_key(k.strip()) for k in given.split(",") if k.strip()]
    settings = settings_from_environment()
    return checkpoint_verifiers(KeyRing.load(settings.keys_dir), settings.checkpoint_origin)


def _audit_verify_export(args: argparse.Namespace) -> int:
    from gateway.log import verify_export

    try:
        policy = _witness_policy(args)
    except _BadPolicy as exc:
        sys.stderr.write(f"gateway: witness policy: {exc}\n")
        return 2
    report = verify_export(read_file(args.file).splitlines(), _verifier_keys(args.key))
    if not report.ok or report.checkpoint is None:
        sys.stderr.write(f"gateway: line {report.bad_line} of {args.file}: {report.problem}\n")
        return 1
    witnessed, said = _cosigned(report.checkpoint.note, policy)
    if not witnessed:
        sys.stderr.write(f"gateway: the export's checkpoint is refused: {said}\n")
        return 1
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(report.types.items())) or "no records"
    sys.stdout.write(
        f"  ok  checkpoint of {report.checkpoint.origin} at size {report.checkpoint.size}\n"
        + said
        + f"  ok  {report.proven} records proven included ({kinds})\n"
    )
    if report.pending:
        sys.stdout.write(
            f"  --  {report.pending} records not in that checkpoint yet "
            f"(export again against a newer one to prove them)\n"
        )
    sys.stdout.write("the export verifies\n")
    return 0


def _audit_verify_proof(args: argparse.Namespace) -> int:
    from gateway.log import b64url, read_leaf_hash, verify_tlog_proof

    given = None
    if args.leaf_hash is not None:
        try:
            given = read_leaf_hash(args.leaf_hash)
        except ValueError as exc:
            sys.stderr.write(f"gateway: --leaf-hash: {exc}\n")
            return 2
    try:
        policy = _witness_policy(args)
    except _BadPolicy as exc:
        sys.stderr.write(f"gateway: witness policy: {exc}\n")
        return 2
    text = read_file(args.file).decode("utf-8", errors="replace")
    try:
        proven = verify_tlog_proof(text, _verifier_keys(args.key), leaf_hash=given)
    except ValueError as exc:
        hint = _LEAF_HASH_HINT if given is None and "no leaf hash" in str(exc) else ""
        sys.stderr.write(f"gateway: {args.file} does not verify: {exc}{hint}\n")
        return 1
    witnessed, said = _cosigned(proven.checkpoint.note, policy)
    if not witnessed:
        sys.stderr.write(f"gateway: {args.file} does not verify: {said}\n")
        return 1
    sys.stdout.write(
        f"  ok  leaf {proven.index} is in the checkpoint of {proven.checkpoint.origin} "
        f"at size {proven.checkpoint.size} (leaf hash {b64url(proven.leaf_hash)})\n" + said
    )
    if proven.data is None:
        sys.stdout.write(
            "  --  not checked: the leaf's contents (its type, time and envelope hash): "
            "the proof carries no leaf (`extra` line)\n"
            "the leaf hash is in the log\n"
        )
        return 0
    if given is not None:
        sys.stdout.write("  ok  the leaf in the proof has the hash given\n")
    leaf = proven.leaf or {}
    sys.stdout.write(
        f"  ok  {leaf.get('type')} record of {leaf.get('ts')}, "
        f"envelope {leaf.get('envelope_hash')}\n"
        "the proof verifies\n"
    )
    return 0


_LEAF_HASH_HINT = "; give the leaf hash it proves with --leaf-hash=HASH (a receipt's leafHash)"


class _BadPolicy(ValueError):
    """A witness policy that cannot be read from the flags given."""


def _witness_policy(args: argparse.Namespace) -> Any:
    """The witness policy of `--witness-policy FILE`, or of `--witness KEY` and
    `--quorum K`; `None` when neither is given."""
    from gateway.log import CheckpointError, policy_of, read_policy

    try:
        if args.witness_policy is not None:
            if args.witness or args.quorum is not None:
                raise _BadPolicy("give --witness-policy, or --witness and --quorum, not both")
            return read_policy(read_file(args.witness_policy).decode("utf-8"))
        if args.witness:
            return policy_of(args.witness, args.quorum)
        if args.quorum is not None:
            raise _BadPolicy("--quorum needs the witnesses' keys (--witness)")
    except CheckpointError as exc:
        raise _BadPolicy(str(exc)) from None
    return None


def _cosigned(note: str, policy: Any) -> tuple[bool, str]:
    """(whether `note` meets the policy, the line to print), or the note that it was not
    asked: a checkpoint's cosignatures are checked only against witnesses one trusts."""
    from gateway.log import CheckpointError

    if policy is None:
        lines = note[note.rfind("\n\n") + 2 :].count("\n")
        return True, (
            f"  --  not checked: witnesses' cosignatures (the checkpoint carries {lines - 1} "
            "besides the log's signature; give --witness-policy FILE, or --witness KEY and "
            "--quorum K, to check that it is the one every reader sees)\n"
        )
    try:
        found = policy.check(note)
    except CheckpointError as exc:
        return False, str(exc)
    names = ", ".join(c.witness for c in found)
    return True, (
        f"  ok  cosigned by {len(found)} of the {len(policy.witnesses)} witnesses trusted "
        f"({names}; {policy.quorum} needed)\n"
    )


def _witness_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        help="a witness's cosigning key to trust (`<name>+<key id>+<key>`; repeat)",
    )
    parser.add_argument(
        "--quorum", type=int, help="cosignatures needed of those witnesses (default: all)"
    )
    parser.add_argument(
        "--witness-policy",
        help="a witness policy file: `witness <key>` lines and a `quorum <k>` line",
    )


def _audit_forget(args: argparse.Namespace) -> int:
    from gateway.identifiers import PersonalId
    from gateway.notifications import RecipientSeal, forget_recipient
    from gateway.records import catalogue_in_effect, forget
    from gateway.resources import load_procedures, load_pseudonym_key
    from gateway.storage import create_engine, require_head
    from schema import canonical_fields

    settings = settings_from_environment()
    subject = PersonalId(args.personal_id).value
    catalogue = load_procedures(settings)
    key = load_pseudonym_key(settings)

    async def run() -> Any:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            return await forget(
                engine,
                subject,
                catalogue=await catalogue_in_effect(engine, catalogue, canonical_fields()),
                default_days=settings.retention_days,
                operator=args.operator,
                pseudonym_key=key,
                also=lambda conn: forget_recipient(conn, RecipientSeal(key), subject),
            )
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    sys.stdout.write(
        f"forgotten: {done.records} records named the person; their subject key, their "
        f"wrapped record keys and {done.consents} consents are deleted, so what was sealed "
        f"for them opens no more; the envelopes and the log stay (record {done.event_id})\n"
    )
    return 0


def _audit_retention(args: argparse.Namespace) -> int:
    from gateway.records import catalogue_in_effect, clear_expired
    from gateway.resources import load_procedures, load_pseudonym_key
    from gateway.storage import create_engine, require_head
    from schema import canonical_fields

    settings = settings_from_environment()
    catalogue = load_procedures(settings)
    key = load_pseudonym_key(settings)

    async def run() -> Any:
        engine = create_engine(settings.database_url.get_secret_value())
        try:
            await require_head(engine)
            return await clear_expired(
                engine,
                catalogue=await catalogue_in_effect(engine, catalogue, canonical_fields()),
                default_days=settings.retention_days,
                pseudonym_key=key,
                batch_size=settings.retention_batch_size,
                max_records=args.max_records or settings.retention_max_records,
                operator=args.operator,
                dry_run=args.dry_run,
            )
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    if done.skipped:
        sys.stderr.write("another gateway is running retention now; try again later\n")
        return 2
    more = "; more are past their retention: run again" if done.more else ""
    months = ", ".join(done.months)
    if args.dry_run:
        whole = f"; the months {months} are past it whole" if months else ""
        sys.stdout.write(
            f"due: {len(done.records)} records past their retention, with "
            f"{done.subject_entries} subject-index entries{whole} (nothing changed){more}\n"
        )
        return 0
    if done.event_id is None:
        sys.stdout.write("nothing past its retention, and no consent past its end\n")
        return 0
    if months:
        sys.stdout.write(
            f"dropped: the months {months}, with the personal parts of {done.month_records} "
            f"records\n"
        )
    sys.stdout.write(
        f"cleared: the personal parts of {len(done.records)} records past their retention "
        f"and {done.subject_entries} subject-index entries; {done.consents_expired} consents "
        f"expired; the envelopes and the log stay (record {done.event_id}){more}\n"
    )
    return 0


def _log_integrate(args: argparse.Namespace) -> int:
    from gateway.log.store import LogIntegrityError
    from gateway.storage import create_engine, create_sequencer_engine, require_head

    settings = settings_from_environment()

    async def run() -> int:
        url = settings.database_url.get_secret_value()
        engine = create_sequencer_engine(url, settings.sequencer_timeout) or create_engine(url)
        try:
            await require_head(engine)
            async with opened_guard(settings, engine, signing=True) as (store, guard):
                await store.ensure_checkpoint()
                # As the gateway's sequencer: nothing signed that forks what was published.
                await guard.check(ask_witnesses=True)
                integrated: int = await integrate_all(store, guard)
                return integrated
        finally:
            await engine.dispose()

    async def integrate_all(store: Any, guard: Any) -> int:
        total, waited = 0, 0.0
        while True:
            done: int = await store.integrate(max_batch=args.max_batch)
            total += done
            if done and store.signed is not None:
                await guard.signed(store.signed)
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


def add_audit_commands(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `audit` and `log` to the `gateway` command line."""
    audit = sub.add_parser("audit", help="the access log").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    verify = command(audit, "verify", _audit_verify, "verify the access log")
    verify.add_argument("--url", help="check a running gateway's public log instead")
    verify.add_argument("--key", help="checkpoint verifier key(s) to trust, comma-separated")
    verify.add_argument(
        "--previous", help="a checkpoint seen before (file): the log must still extend it"
    )
    _witness_flags(verify)

    vexport = command(
        audit, "verify-export", _audit_verify_export, "check an export offline: proofs, signature"
    )
    vexport.add_argument("file", help="the JSON lines of /audit/export")
    vexport.add_argument(
        "--key", help="checkpoint verifier key(s), comma-separated (default: this machine's keys)"
    )
    _witness_flags(vexport)
    vproof = command(
        audit, "verify-proof", _audit_verify_proof, "check an access receipt (tlog-proof) offline"
    )
    vproof.add_argument(
        "file", help="a receipt from /me/accesses/{id}/receipt, or a proof from /log/tlog-proof"
    )
    vproof.add_argument(
        "--key", help="checkpoint verifier key(s), comma-separated (default: this machine's keys)"
    )
    vproof.add_argument(
        "--leaf-hash",
        help="the leaf hash the proof must prove (a receipt's leafHash, base64url or base64); "
        "needed when the proof carries no leaf",
    )
    _witness_flags(vproof)
    forgetp = command(
        audit,
        "forget",
        _audit_forget,
        "forget a person: delete their personal parts and subject key once retention is over",
    )
    forgetp.add_argument("personal_id", help="the person's 12-digit personal id")
    forgetp.add_argument("--operator", required=True, help="your operator id (recorded)")

    retentionp = command(
        audit,
        "retention",
        _audit_retention,
        "clear the personal parts past their retention now, as the schedule does",
    )
    retentionp.add_argument(
        "--operator", required=True, help="your operator id (recorded, pseudonymised)"
    )
    retentionp.add_argument(
        "--max-records",
        type=int,
        help="most records to clear in this run (default: GATEWAY_RETENTION_MAX_RECORDS)",
    )
    retentionp.add_argument(
        "--dry-run", action="store_true", help="count what is due, change nothing"
    )

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
    add_continuity_commands(logp, command)
