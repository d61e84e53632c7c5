"""``python -m sandbox population|business|sample``: run a sandbox service or print sample ids."""

import argparse
import gc
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import uvicorn

from sandbox import business, population
from sandbox._data import generate
from sandbox.config import SandboxSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Reference agency services with deterministic synthetic data. "
        "Defaults come from SANDBOX_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("population", "serve the population database (citizens, households)"),
        ("business", "serve the business registry (enterprises)"),
    ):
        serve = commands.add_parser(name, help=helptext)
        serve.add_argument("--host")
        serve.add_argument("--port", type=int)
        _data_options(serve)
        serve.add_argument("--latency-ms", type=float, dest="latency_ms")
    _data_options(commands.add_parser("sample", help="print ids worth querying, as JSON"))
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
    settings = SandboxSettings(**overrides)
    if args.command == "sample":
        body = generate(settings).sample.to_json()
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.command == "population":
        app = population.create_app(settings)
        default_port = settings.population_port
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
