"""`gateway demo`: the reference agencies and the gateway, running on this machine.

It migrates the embedded SQLite database, makes development keys if there are none,
starts the population and business sandboxes and the gateway as child processes,
asks one real query, prints where to go next, and stops every child on Ctrl-C.
Its child processes are this interpreter running the project's own modules.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess  # nosec B404
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson

__all__ = ["DEMO_QUERY", "Demo"]

DEMO_QUERY = """{{
  citizen(personalId: "{personal_id}") {{
    fullName
    birthDate
    permanentResidence {{ provinceName wardName }}
    household {{ members {{ person {{ fullName }} relationToHead }} }}
  }}
}}"""

_START_TIMEOUT = 120.0


class DemoFailed(RuntimeError):
    """A child process did not start or answer."""


class Demo:
    """Starts and supervises the demo's processes."""

    def __init__(
        self,
        *,
        port: int = 8000,
        population_port: int = 8101,
        business_port: int = 8102,
        citizens: int = 10_000,
        var: Path = Path("var"),
    ) -> None:
        self.port = port
        self.population_port = population_port
        self.business_port = business_port
        self.citizens = citizens
        self.var = var
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self, query: str) -> dict[str, str]:
        import sandbox

        manifests = Path(sandbox.__file__).parent / "manifests"
        urls = {
            "population": f"http://127.0.0.1:{self.population_port}",
            "business": f"http://127.0.0.1:{self.business_port}",
        }
        return {
            **os.environ,
            "GATEWAY_ENVIRONMENT": "demo",
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_ORIGIN": self.gateway_url,
            "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{self.var / 'gateway.db'}",
            "GATEWAY_KEYS_DIR": str(self.var / "keys"),
            "GATEWAY_CONNECTORS_DIR": str(manifests),
            "GATEWAY_CONNECTOR_URLS": orjson.dumps(urls).decode(),
            "GATEWAY_QUERY_PAGE": "true",
            "GATEWAY_QUERY_EXAMPLE": query,
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_LOG_JSON": "false",
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        logs = self.var / "log"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name.replace(' ', '-')}.log").open("ab") as sink:
            process = subprocess.Popen(  # noqa: S603  # nosec B603
                [sys.executable, *args], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        self.children.append((name, process))

    def _wait(self, name: str, url: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            for child, process in self.children:
                if process.poll() is not None:
                    raise DemoFailed(
                        f"{child} exited with status {process.returncode}; see {self.var / 'log'}/"
                    )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).is_success:
                    return
            time.sleep(0.2)
        raise DemoFailed(f"{name} did not answer at {url} within {_START_TIMEOUT:.0f} s")

    def _prepare(self) -> None:
        import asyncio

        from gateway.storage import create_engine, upgrade
        from keys import KeyRing

        async def migrate() -> None:
            engine = create_engine(f"sqlite+aiosqlite:///{self.var / 'gateway.db'}")
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()

        asyncio.run(migrate())
        KeyRing.ensure(self.var / "keys")

    def _ask(self, query: str) -> Any:
        response = httpx.post(
            f"{self.gateway_url}/graphql",
            json={"query": query},
            headers={"Accept": "application/graphql-response+json"},
            timeout=10.0,
        )
        return response.json()

    def stop(self) -> None:
        """Stop every child: politely, then firmly."""
        for _, process in self.children:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for _, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.children.clear()

    def run(self) -> int:
        """Run until Ctrl-C (or SIGTERM); returns the exit status."""

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        # Installed explicitly: a shell that starts us in the background ignores SIGINT.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        out = sys.stdout
        try:
            self._prepare()
            common = ["--citizens", str(self.citizens)]
            self._spawn(
                "population sandbox",
                ["-m", "sandbox", "population", "--port", str(self.population_port), *common],
            )
            self._spawn(
                "business sandbox",
                ["-m", "sandbox", "business", "--port", str(self.business_port), *common],
            )
            population = f"http://127.0.0.1:{self.population_port}"
            self._wait("population sandbox", f"{population}/healthz")
            self._wait("business sandbox", f"http://127.0.0.1:{self.business_port}/healthz")
            sample = httpx.get(f"{population}/_sandbox/sample", timeout=5.0).json()
            personal_id = sample["citizens"][0]
            query = DEMO_QUERY.format(personal_id=personal_id)
            self._spawn("gateway", ["-m", "gateway", "serve"], env=self._env(query))
            self._wait("gateway", f"{self.gateway_url}/readyz")
            answer = self._ask(query)
            out.write(
                "\nThe gateway demo is running.\n\n"
                f"  Query page       {self.gateway_url}/graphql   (open it in a browser)\n"
                f"  GraphQL endpoint {self.gateway_url}/graphql\n"
                f"  Readiness        {self.gateway_url}/readyz\n"
                f"  Sandboxes        {population} (population), "
                f"http://127.0.0.1:{self.business_port} (business registry)\n"
                f"  Logs             {self.var / 'log'}/\n\n"
                f"A ready query with a real sandbox citizen:\n\n{query}\n\n"
                "With curl:\n\n"
                f"  curl -s {self.gateway_url}/graphql -H 'Content-Type: application/json' \\\n"
                f"    -d '{orjson.dumps({'query': ' '.join(query.split())}).decode()}'\n\n"
                "The gateway's answer:\n\n"
                f"{orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode()}\n\n"
                "Press Ctrl-C to stop every process the demo started.\n"
            )
            out.flush()
            while all(p.poll() is None for _, p in self.children):
                time.sleep(0.5)
            dead = [name for name, p in self.children if p.poll() is not None]
            sys.stderr.write(
                f"demo: {', '.join(dead)} stopped (see {self.var / 'log'}/); stopping the rest\n"
            )
            return 1
        except KeyboardInterrupt:
            out.write("\nStopping the demo...\n")
            return 0
        except DemoFailed as exc:
            sys.stderr.write(f"demo: {exc}\n")
            return 1
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
