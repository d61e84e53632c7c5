"""`gateway demo`: the reference agencies and the gateway, running on this machine.

It migrates the embedded SQLite database, makes development keys if there are none,
registers the demo client (`VN/GOV/DEMO/query-page`, with a key kept in
`var/client-keys/`), writes the sandbox land registry's database (`var/land.db`, read
by the gateway's `sql` connector), starts the population, business, insurance and
civil-status sandboxes (insurance an X-Road style service, read by the `xroad`
connector; civil status a GraphQL one, read by the `graphql` connector), the
sandbox sign-in issuer and the gateway as child processes, asks one real query and one
prefill signed as the demo client, prints where to go next, and stops every child on
Ctrl-C. Its child processes are this interpreter running the project's own modules.

The query page signs its requests through the gateway's `UnsafeDemoTokens` route,
which answers only with a secret made anew at each start: it goes to the gateway in
its environment (readable by this user only) and to whoever reads this terminal, in
the fragment of the query page's address (`/graphql#demo=<secret>`), which a browser
never sends to a server. It is written nowhere else, the logs included.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess  # nosec B404
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson

from gateway.cli._common import DEMO_ISSUER_PORT
from gateway.config import DEVELOPMENT_PLATFORM_ORG
from gateway.web._demo_tokens import DEMO_CLIENT, query_page_url

__all__ = ["DEMO_PROCEDURE", "DEMO_QUERY", "Demo"]

DEMO_PROCEDURE = "1.004222"  # permanent residence registration
DEMO_OIDC_CLIENT = "gateway"
"""The gateway's client id at the sandbox issuer, for signing in through the browser."""
DEMO_QUERY = """{{
  citizen(personalId: "{personal_id}") {{
    fullName
    birthDate
    permanentResidence {{ provinceName wardName }}
    household {{ members {{ person {{ fullName }} relationToHead }} }}
  }}
}}"""
PREFILL_QUERY = """{{
  prefill(procedure: "{procedure}", applicant: "{personal_id}") {{
    procedure {{ code name {{ vi en }} }}
    fields {{ name value error }}
    papersAvoided {{ paper {{ vi en }} }}
    papersStillNeeded {{ paper {{ vi en }} reasons {{ path code }} }}
  }}
}}"""

TRANSFER_PROCEDURE = "1.013831"  # land-use right transfer registration
MARRIAGE_DOCUMENTS = """query($p: String!) { giayToTheoNguoi(soDinhDanh: $p) { loai } }"""

DEMO_ORGANISATION = "VN/GOV/DEMO"
"""The demo client's organisation (`VN/GOV/DEMO/query-page`): its desk receives the
demo's dossiers."""
DEMO_AGENCY = "VN/GOV/BNNMT"
"""The agency whose admin registers a connector in the demo: the land registry's."""
DEMO_AUDITOR_ORG = "VN/GOV/TTCP"
"""The auditors' organisation in the demo (the Government Inspectorate)."""
DEMO_CONNECTOR = "so-dia-chinh"
"""The name of the connector the demo's agency admin may submit (a copy of `land`)."""

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
        insurance_port: int = 8104,
        civil_port: int = 8105,
        dossiers_port: int = 8106,
        witness_port: int = 8107,
        notify_port: int = 8108,
        issuer_port: int = DEMO_ISSUER_PORT,
        citizens: int = 10_000,
        var: Path = Path("var"),
    ) -> None:
        self.port = port
        self.population_port = population_port
        self.business_port = business_port
        self.insurance_port = insurance_port
        self.civil_port = civil_port
        self.dossiers_port = dossiers_port
        self.witness_port = witness_port
        self.notify_port = notify_port
        self.issuer_port = issuer_port
        self.citizens = citizens
        self.var = var
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        # A step that ends before the gateway starts (the land database), not a service.
        self.steps: list[subprocess.Popen[bytes]] = []
        # The query page's key to the demo-token route, for this start only.
        self.page_secret = secrets.token_urlsafe(32)
        self.witness_key: str | None = None
        """The sandbox witness's cosigning key, once it is started."""

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dossiers_url(self) -> str:
        return f"http://127.0.0.1:{self.dossiers_port}"

    @property
    def witness_url(self) -> str:
        return f"http://127.0.0.1:{self.witness_port}"

    @property
    def notify_url(self) -> str:
        """The sandbox notification channel: its page lists what the gateway sent."""
        return f"http://127.0.0.1:{self.notify_port}"

    @property
    def witness_key_file(self) -> Path:
        return self.var / "keys" / "sandbox-witness.pem"

    @property
    def witness_policy_file(self) -> Path:
        """The demo's witness policy, for whoever checks the log (not for the gateway)."""
        return self.var / "witness-policy.txt"

    def _witness_key(self) -> str:
        """The sandbox witness's cosigning key (`<name>+<key id>+<key>`), made once."""
        from lienthong_client.log import cosigner_key

        from sandbox import SandboxSettings
        from sandbox._issuer_keys import load_or_create

        private = load_or_create(self.witness_key_file).private
        return cosigner_key(SandboxSettings().witness_name, private.public_key()).text

    def _log_key(self) -> str:
        """The verifier key of the demo log's checkpoints, which the witness trusts."""
        from keys import KeyRing, verifier_key

        origin = self.gateway_url.split("://", 1)[-1] + "/log"
        public = KeyRing.load(self.var / "keys").verifying("checkpoints")[0].public
        return verifier_key(origin, public)

    @property
    def issuer_url(self) -> str:
        return f"http://127.0.0.1:{self.issuer_port}"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.var / 'gateway.db'}"

    @property
    def land_database(self) -> Path:
        """The land registry's SQLite file, written before the gateway starts."""
        return (self.var / "land.db").resolve()

    def _env(self, query: str) -> dict[str, str]:
        import sandbox

        manifests = Path(sandbox.__file__).parent / "manifests"
        urls = {
            "population": f"http://127.0.0.1:{self.population_port}",
            "business": f"http://127.0.0.1:{self.business_port}",
            "insurance": f"http://127.0.0.1:{self.insurance_port}",
            "civil": f"http://127.0.0.1:{self.civil_port}",
            "dossiers": self.dossiers_url,
            "land": f"sqlite:///{self.land_database}",
        }
        given = os.environ.get("GATEWAY_CONNECTORS_DIR")
        if given:
            # The folder given serves instead of the sandbox's manifests; the sandbox's
            # addresses apply to those of its connectors the folder has.
            from connectors import load_manifests

            manifests = Path(given)
            names = {m.name for m in load_manifests(manifests)}
            urls = {name: url for name, url in urls.items() if name in names}
        return {
            **os.environ,
            "GATEWAY_ENVIRONMENT": "demo",
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_ORIGIN": self.gateway_url,
            "GATEWAY_DATABASE_URL": self.database_url,
            "GATEWAY_KEYS_DIR": str(self.var / "keys"),
            "GATEWAY_CLIENT_KEYS_DIR": str(self.var / "client-keys"),
            "GATEWAY_CONNECTORS_DIR": str(manifests),
            "GATEWAY_CONNECTOR_URLS": orjson.dumps(urls).decode(),
            # The sandbox agencies run on this machine: connectors registered through
            # /admin may reach them.
            "GATEWAY_CONNECTORS_ALLOW_LOOPBACK": "true",
            "GATEWAY_OIDC_ISSUER": self.issuer_url,
            # Browser sign-in at the sandbox issuer: a public client, PKCE only.
            "GATEWAY_OIDC_CLIENT_ID": DEMO_OIDC_CLIENT,
            "GATEWAY_QUERY_PAGE": "true",
            "GATEWAY_QUERY_EXAMPLE": query,
            "GATEWAY_UNSAFE_DEMO_TOKENS": "true",
            "GATEWAY_UNSAFE_DEMO_SECRET": self.page_secret,
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_LOG_JSON": "false",
            # Notifications go to the sandbox channel, which keeps and lists them.
            "GATEWAY_NOTIFY_URL": f"{self.notify_url}/notifications",
            # The sandbox witness cosigns each checkpoint that extends the last it saw.
            **(
                {
                    "GATEWAY_WITNESSES": orjson.dumps(
                        [{"url": self.witness_url, "key": self.witness_key}]
                    ).decode()
                }
                if self.witness_key
                else {}
            ),
        }

    def _issuer_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SANDBOX_ISSUER_AUDIENCE": self.gateway_url,
            "SANDBOX_ISSUER_KEY_FILE": str(self.var / "keys" / "sandbox-issuer.pem"),
            # The gateway is the issuer's one client, sent back to its callback only.
            "SANDBOX_ISSUER_CLIENTS": orjson.dumps(
                {DEMO_OIDC_CLIENT: [f"{self.gateway_url}/dang-nhap/callback"]}
            ).decode(),
        }

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, *, step: bool = False
    ) -> subprocess.Popen[bytes]:
        logs = self.var / "log"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name.replace(' ', '-')}.log").open("ab") as sink:
            process = subprocess.Popen(  # noqa: S603  # nosec B603
                [sys.executable, *args], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        if step:
            self.steps.append(process)
        else:
            self.children.append((name, process))
        return process

    def _finish(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Wait for a step to end; it must end well."""
        try:
            status = process.wait(timeout=_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DemoFailed(f"{name} did not end within {_START_TIMEOUT:.0f} s") from None
        if status != 0:
            raise DemoFailed(f"{name} exited with status {status}; see {self.var / 'log'}/")

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
        """Migrate, make keys, and register the demo client once."""
        import asyncio

        from gateway.admission import ClientRegistry, add_local_key, has_local_key
        from gateway.cli._clients import cli_actor
        from gateway.config import GatewaySettings
        from gateway.errors import Conflict
        from gateway.records import admin_recorder
        from gateway.resources import load_procedures
        from gateway.storage import create_engine, upgrade
        from keys import KeyRing, load_secret
        from policies import AgencyKind

        KeyRing.ensure(self.var / "keys")
        # Registering the demo client and its key are recorded like any change to the
        # registry, as made from this command line.
        pseudonym_key = load_secret(self.var / "keys", "pseudonyms", create=True)
        policy_version = load_procedures(GatewaySettings()).version
        record = admin_recorder(
            pseudonym_key=pseudonym_key,
            policy_version=policy_version,
            operator=cli_actor(),
            operator_org=None,
        )

        async def prepare() -> None:
            engine = create_engine(self.database_url)
            try:
                await upgrade(engine)
                registry = ClientRegistry(engine)
                with contextlib.suppress(Conflict):
                    await registry.add(
                        DEMO_CLIENT,
                        name="Query page of the demo",
                        organisation="Demo",
                        agency_kinds=[k.value for k in AgencyKind],
                        record=record,
                    )
                if not has_local_key(self.var / "client-keys", DEMO_CLIENT):
                    await add_local_key(
                        registry, self.var / "client-keys", DEMO_CLIENT, record=record
                    )
            finally:
                await engine.dispose()

        asyncio.run(prepare())
        self._prepare_agency(pseudonym_key, policy_version, cli_actor())

    def _prepare_agency(self, pseudonym_key: bytes, policy_version: str, operator: str) -> None:
        """Let the demo's agency register a connector to its land database.

        The platform sets the agency's authority once (the land fields, the sandbox's
        land database), recorded as an operator's `authority_set` would be; the manifest
        to submit, a copy of the land registry's named `so-dia-chinh`, is written to the
        demo's folder.
        """
        import asyncio

        import yaml

        import sandbox
        from gateway.records import insert_events
        from gateway.storage import create_engine, get_authority, set_authority
        from gateway.web._connector_routes import connector_event

        manifest = yaml.safe_load(
            (Path(sandbox.__file__).parent / "manifests" / "land.yaml").read_text()
        )
        manifest.update(
            name=DEMO_CONNECTOR,
            title="Cơ sở dữ liệu đất đai của Sở (bản đăng ký thử)",
            database={"url": f"sqlite:///{self.land_database}"},
        )
        (self.var / f"{DEMO_CONNECTOR}.yaml").write_text(
            yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False)
        )
        fields = ["LandParcel.*"]
        endpoints = [f"sqlite:///{self.land_database}"]

        async def authorise() -> None:
            engine = create_engine(self.database_url)
            try:
                if await get_authority(engine, DEMO_AGENCY) is not None:
                    return
                async with engine.begin() as conn:
                    await set_authority(
                        conn,
                        organisation=DEMO_AGENCY,
                        fields=fields,
                        endpoints=endpoints,
                        updated_by=operator,
                    )
                    await insert_events(
                        conn,
                        [
                            connector_event(
                                action="authority_set",
                                name=None,
                                version=None,
                                organisation=DEMO_AGENCY,
                                operator=operator,
                                operator_org=None,
                                pseudonym_key=pseudonym_key,
                                policy_version=policy_version,
                                fields=fields,
                                endpoints=endpoints,
                            )
                        ],
                    )
            finally:
                await engine.dispose()

        asyncio.run(authorise())

    def _ask(
        self, query: str, subjects: list[str], case: str, procedure: str = DEMO_PROCEDURE
    ) -> Any:
        from gateway.admission import load_local_key, sign_request
        from policies import Purpose

        body = orjson.dumps({"query": query})
        key, kid = load_local_key(self.var / "client-keys", DEMO_CLIENT)
        token = sign_request(
            client_id=DEMO_CLIENT,
            key=key,
            kid=kid,
            audience=self.gateway_url,
            body=body,
            purpose=Purpose(procedure, case, "demo-officer", tuple(subjects)),
        )
        response = httpx.post(
            f"{self.gateway_url}/graphql",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/graphql-response+json",
                "Authorization": f"Bearer {token}",
            },
            timeout=10.0,
        )
        return response.json()

    def _integrated(self, receipt: dict[str, Any]) -> tuple[str, str]:
        """Wait (within the merge delay) for the receipt's leaf in a checkpoint the
        witness cosigned; (proof URL, checkpoint)."""
        proof_url = f"{self.gateway_url}/log/tlog-proof?hash={receipt['leafHash']}"
        witness = (self.witness_key or "").split("+", 1)[0]
        cosigned = f"\u2014 {witness} "
        deadline = time.monotonic() + 10
        while True:
            proof = httpx.get(proof_url, timeout=5.0)
            if proof.status_code == 200 and (self.witness_key is None or cosigned in proof.text):
                break
            if time.monotonic() > deadline:
                raise DemoFailed(
                    "the demo's access was not in a checkpoint the witness cosigned in 10 s"
                )
            time.sleep(0.2)
        return proof_url, httpx.get(f"{self.gateway_url}/log/checkpoint", timeout=5.0).text

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
        for step in self.steps:
            if step.poll() is None:
                step.kill()
            step.wait()
        self.steps.clear()

    def _start(self) -> str:
        """Start every process; returns the sample citizen's personal id."""
        common = ["--citizens", str(self.citizens)]
        population = f"http://127.0.0.1:{self.population_port}"
        # The land registry is derived from the same population: the same citizens hold
        # its parcels. Written while the sandboxes start, read by the gateway.
        land = self._spawn(
            "land registry",
            ["-m", "sandbox", "land", "--database", str(self.land_database), *common],
            step=True,
        )
        self._spawn(
            "population sandbox",
            ["-m", "sandbox", "population", "--port", str(self.population_port), *common],
        )
        self._spawn(
            "business sandbox",
            ["-m", "sandbox", "business", "--port", str(self.business_port), *common],
        )
        self._spawn(
            "insurance sandbox",
            ["-m", "sandbox", "insurance", "--port", str(self.insurance_port), *common],
        )
        self._spawn(
            "civil-status sandbox",
            ["-m", "sandbox", "civil", "--port", str(self.civil_port), *common],
        )
        self._spawn(
            "dossier registry sandbox",
            ["-m", "sandbox", "dossiers", "--port", str(self.dossiers_port), *common],
        )
        self.witness_key = self._witness_key()
        self.witness_policy_file.write_text(
            "# Witnesses of the demo's access log: check a checkpoint against these, not\n"
            "# against what the gateway says (gateway audit verify --witness-policy ...).\n"
            f"witness {self.witness_key}\nquorum 1\n",
            encoding="utf-8",
        )
        self._spawn(
            "sandbox witness",
            [
                "-m", "sandbox", "witness", "--port", str(self.witness_port),
                "--key-file", str(self.witness_key_file),
                "--state", str(self.var / "witness-state.json"),
                "--log-key", self._log_key(),
            ],
        )  # fmt: skip
        self._spawn(
            "sandbox notification channel",
            [
                "-m", "sandbox", "notify", "--port", str(self.notify_port),
                "--store", str(self.var / "notifications.jsonl"),
            ],
        )  # fmt: skip
        self._spawn(
            "sandbox issuer",
            ["-m", "sandbox", "issuer", "--port", str(self.issuer_port)],
            self._issuer_env(),
        )
        self._wait("population sandbox", f"{population}/healthz")
        self._wait("business sandbox", f"http://127.0.0.1:{self.business_port}/healthz")
        self._wait("insurance sandbox", f"http://127.0.0.1:{self.insurance_port}/healthz")
        self._wait("civil-status sandbox", f"http://127.0.0.1:{self.civil_port}/healthz")
        self._wait("dossier registry sandbox", f"{self.dossiers_url}/healthz")
        self._wait("sandbox witness", f"{self.witness_url}/healthz")
        self._wait("sandbox notification channel", f"{self.notify_url}/healthz")
        self._wait("sandbox issuer", f"{self.issuer_url}/.well-known/openid-configuration")
        sample = httpx.get(f"{population}/_sandbox/sample", timeout=5.0).json()
        personal_id: str = sample["citizens"][0]
        query = DEMO_QUERY.format(personal_id=personal_id)
        self._finish("land registry", land)
        self._spawn("gateway", ["-m", "gateway", "serve"], env=self._env(query))
        self._wait("gateway", f"{self.gateway_url}/readyz")
        return personal_id

    def _married_landholder(self) -> str | None:
        """A citizen who holds land and is married, by the sandboxes' own records."""
        import sqlite3

        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{self.land_database}?mode=ro", uri=True)
            ) as db:
                holders = [
                    row[0]
                    for row in db.execute(
                        "SELECT DISTINCT ma_dinh_danh FROM chu_su_dung "
                        "WHERE length(ma_dinh_danh) = 12 ORDER BY ma_dinh_danh LIMIT 500"
                    )
                ]
        except sqlite3.Error:
            return None  # no land registry written: nobody to show
        with httpx.Client(base_url=f"http://127.0.0.1:{self.civil_port}", timeout=5.0) as civil:
            for person in holders:
                answer = civil.post(
                    "/graphql", json={"query": MARRIAGE_DOCUMENTS, "variables": {"p": person}}
                ).json()
                documents = (answer.get("data") or {}).get("giayToTheoNguoi") or []
                if any(d.get("loai") == "KET_HON" for d in documents):
                    return str(person)
        return None

    def _dossier(self, procedure: str, personal_id: str) -> str:
        """The code of an open dossier of `procedure` at the demo's organisation whose
        applicant is `personal_id`: one the registry holds, or one it receives now."""
        listed = httpx.get(f"{self.dossiers_url}/_sandbox/sample", timeout=5.0).json()
        for dossier in listed["ho_so"]:
            persons = dossier["nguoi_lien_quan"]
            if (
                dossier["ma_thu_tuc"] == procedure
                and dossier["co_quan_tiep_nhan"] == DEMO_ORGANISATION
                and dossier["trang_thai"] in ("DA_TIEP_NHAN", "DANG_XU_LY")
                and persons
                and persons[0]["ma_dinh_danh"] == personal_id
            ):
                return str(dossier["ma_ho_so"])
        received = httpx.post(
            f"{self.dossiers_url}/_sandbox/ho-so",
            json={
                "ma_thu_tuc": procedure,
                "co_quan_tiep_nhan": DEMO_ORGANISATION,
                "nguoi_lien_quan": [{"ma_dinh_danh": personal_id, "vai_tro": "NGUOI_NOP"}],
            },
            timeout=5.0,
        )
        if received.status_code != 201:
            raise DemoFailed(f"the dossier registry received no dossier: {received.text}")
        return str(received.json()["ma_ho_so"])

    def _prefill(self, procedure: str, personal_id: str, case: str) -> str:
        """A prefill asked as the demo client, as lines: fields, then the papers."""
        answer = self._ask(
            PREFILL_QUERY.format(procedure=procedure, personal_id=personal_id),
            [personal_id],
            case,
            procedure,
        )
        form = (answer.get("data") or {}).get("prefill") or {}
        avoided = [p["paper"]["en"] for p in form.get("papersAvoided", [])]
        needed = [
            f"{p['paper']['en']} ({', '.join(sorted({r['code'] for r in p['reasons']}))})"
            for p in form.get("papersStillNeeded", [])
        ]
        filled = [
            f"    {f['name']}: "
            + (orjson.dumps(f["value"]).decode() if f["error"] is None else f"({f['error']})")
            for f in form.get("fields", [])
        ]
        return (
            "\n".join(filled)
            + "\n\n  Papers the applicant no longer brings: "
            + ("; ".join(avoided) or "none")
            + "\n  Papers still needed: "
            + ("; ".join(needed) or "none")
        )

    def _transfer(self) -> str:
        """The land-use right transfer prefill of a married landholder, or why not."""
        person = self._married_landholder()
        if person is None:
            return "(no married landholder found in the sandbox's land registry)"
        return (
            f"Prefill of a land-use right transfer registration ({TRANSFER_PROCEDURE}) for a "
            f"married landholder, {person}:\n"
            "the parcel and its holders from the land registry (`sql` connector), the spouse "
            "from the\npopulation database (`rest`), the couple's marriage certificate from "
            "the civil-status\nregistry (`graphql`), its signature checked against the "
            "registry's published keys.\nThe case is a dossier the demo's desk received at "
            "the dossier registry: the\nprocedure reads only what a dossier it confirms "
            "names.\n\n"
            + self._prefill(TRANSFER_PROCEDURE, person, self._dossier(TRANSFER_PROCEDURE, person))
        )

    def _report(self, personal_id: str) -> str:
        query = DEMO_QUERY.format(personal_id=personal_id)
        case = self._dossier(DEMO_PROCEDURE, personal_id)
        answer = self._ask(query, [personal_id], case)
        residence = self._prefill(DEMO_PROCEDURE, personal_id, case)
        transfer = self._transfer()
        receipt = answer["extensions"]["receipt"]
        proof_url, checkpoint = self._integrated(receipt)
        origin = "" if self.port == 8000 else f"GATEWAY_ORIGIN={self.gateway_url} "
        body = self.var / "body.json"  # in the demo's own folder, which git ignores
        return (
            "\nThe gateway demo is running.\n\n"
            f"  Query page       {query_page_url(self.gateway_url, self.page_secret)}\n"
            "                   (open this address in a browser on this machine: the part "
            "after # is\n                   the page's key for this run, and stays in the "
            "browser; share it with no one)\n"
            f"  GraphQL endpoint {self.gateway_url}/graphql   (every request is signed)\n"
            f"  Dữ liệu của tôi  {self.gateway_url}/toi   (trang của công dân / the citizen's "
            "pages)\n"
            "                   Đăng nhập thử nghiệm: chọn một công dân mẫu, mức 2 / sandbox "
            f"sign-in: pick\n                   a sample citizen, e.g. {personal_id}, level 2 "
            "(no password)\n"
            '\n  Staff consoles   sandbox sign-in: the "Cán bộ" form (any staff id, no '
            "password),\n                   with this role and organisation:\n"
            f"    Kiểm tra       {self.gateway_url}/kiem-tra   (auditor: search, export and "
            f"verify the log,\n                   patterns, citizens' questions) role auditor, "
            f"organisation {DEMO_AUDITOR_ORG}\n"
            f"    Điều hành      {self.gateway_url}/van-hanh   (operator: figures, sources, "
            f"clients,\n                   connector approvals) role operator, organisation "
            f"{DEVELOPMENT_PLATFORM_ORG} (the platform's)\n"
            f"    Kết nối        {self.gateway_url}/co-quan    (agency admin: its connectors) "
            f"role agency_admin,\n                   organisation {DEMO_AGENCY}; a manifest "
            f"to submit: {self.var / f'{DEMO_CONNECTOR}.yaml'}\n"
            "                   (approve it as the operator, with another staff id: four "
            "eyes)\n\n"
            f"  Readiness        {self.gateway_url}/readyz\n"
            f"  Sandboxes        http://127.0.0.1:{self.population_port} (population), "
            f"http://127.0.0.1:{self.business_port} (business registry), "
            f"http://127.0.0.1:{self.insurance_port} (insurance, X-Road), "
            f"http://127.0.0.1:{self.civil_port} (civil status, GraphQL), "
            f"{self.dossiers_url} (dossier registry), "
            f"{self.witness_url} (witness), "
            f"{self.issuer_url} (sign-in)\n"
            f"  Notifications    {self.notify_url} (the sandbox channel: what the gateway "
            "told citizens and agencies)\n"
            f"  Land registry    {self.land_database} (SQLite, read by the `sql` connector)\n"
            f"  Logs             {self.var / 'log'}/\n\n"
            f"A ready query with a real sandbox citizen, for procedure {DEMO_PROCEDURE} "
            f"(permanent residence),\ncase {case}: the citizen's dossier at the dossier "
            "registry,\nwhich the gateway confirms (received by the demo's organisation, "
            "open, naming the\ncitizen) before it reads anything:\n\n"
            f"{query}\n\n"
            "Signed from the command line and sent with curl:\n\n"
            f"  echo '{orjson.dumps({'query': ' '.join(query.split())}).decode()}' > {body}\n"
            f"  TOKEN=$(.venv/bin/gateway token --client {DEMO_CLIENT} "
            f"--procedure {DEMO_PROCEDURE} --case {case} --officer demo-officer "
            f"--subject {personal_id} --body {body})\n"
            f"  curl -s {self.gateway_url}/graphql -H 'Content-Type: application/json' "
            f'-H "Authorization: Bearer $TOKEN" --data-binary @{body}\n\n'
            "The gateway's answer:\n\n"
            f"{orjson.dumps(answer.get('data'), option=orjson.OPT_INDENT_2).decode()}\n\n"
            f"Prefill of the permanent residence form for the same citizen:\n\n"
            + residence
            + "\n\n"
            + transfer
            + "\n\nEvery read is recorded before it is answered, in a log anyone can verify. "
            "The answer's receipt,\na signed promise that the read enters the log within the "
            "merge delay:\n\n"
            f"{orjson.dumps(receipt, option=orjson.OPT_INDENT_2).decode()}\n\n"
            "The log's current checkpoint (a signed note: origin, size, root hash), signed by\n"
            "the log and cosigned by the sandbox witness, which cosigns only a checkpoint\n"
            "that extends the last one it saw (no reader is shown another history):\n\n"
            + "\n".join(f"    {line}" for line in checkpoint.rstrip("\n").split("\n"))
            + "\n\n"
            f"  Proof that the read is in the log  curl -s '{proof_url}'\n"
            f"  Verify the whole log (database)    {origin}.venv/bin/gateway audit verify\n"
            f"  Verify what is public              .venv/bin/gateway audit verify "
            f"--url {self.gateway_url} \\\n"
            f"                                       --witness-policy "
            f"{self.witness_policy_file}\n"
            + "\nSign in as this citizen (level 2) to see who read their data, and consent "
            "requests:\n\n"
            f"  CITIZEN=$(.venv/bin/gateway citizen token --issuer {self.issuer_url} "
            f"--personal-id {personal_id})\n"
            f'  curl -s {self.gateway_url}/me/accesses -H "Authorization: Bearer $CITIZEN"\n'
            f'  curl -s {self.gateway_url}/me/consents -H "Authorization: Bearer $CITIZEN"\n\n'
            "Press Ctrl-C to stop every process the demo started.\n"
        )

    def run(self) -> int:
        """Run until Ctrl-C (or SIGTERM); returns the exit status."""

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        # Installed explicitly: a shell that starts us in the background ignores SIGINT.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        out = sys.stdout
        try:
            self._prepare()
            personal_id = self._start()
            out.write(self._report(personal_id))
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
