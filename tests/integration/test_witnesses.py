"""Checkpoints cosigned by a witness: the sandbox witness over real HTTP, beside a gateway.

The witness is `sandbox.witness` in a server thread of its own, with its own key and
state file; a switch in front of it plays a witness that is down.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lienthong_client.log import cosigner_key

from gateway.log import (
    CheckpointError,
    WitnessPolicy,
    checkpoint_verifiers,
    parse_checkpoint,
    sign_checkpoint,
)
from gateway.log.remote import verify_remote
from keys import KeyRing, verifier_key
from sandbox.witness import WitnessState, create_app
from tests.integration.conftest import LateApp, ServerThread

pytestmark = pytest.mark.own_database
WITNESS = "witness.sandbox.lienthong.test/w1"
METRICS = "witness-test-metrics"


async def _forks(http: httpx.AsyncClient) -> float:
    """The gateway's count of fork alarms from the witness."""
    text = (await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})).text
    for line in text.splitlines():
        if line.startswith(f'gateway_witness_fork_alarms_total{{witness="{WITNESS}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Switch(LateApp):
    """An ASGI app in front of the witness (set once the gateway's keys exist): answers
    503 while it is `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (self.down or self.app is None):
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down\n"})
            return
        await super().__call__(scope, receive, send)


def _witness(gateway: Any, key: Ed25519PrivateKey, state: Path) -> Any:
    """The sandbox witness of the gateway's log (its checkpoint keys), state in `state`."""
    origin = gateway.settings.checkpoint_origin
    keyring = KeyRing.load(gateway.settings.keys_dir)
    return create_app(
        name=WITNESS,
        key=key,
        logs={origin: checkpoint_verifiers(keyring, origin)},
        state=WitnessState(state),
    )


@pytest.fixture
def witness_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def witnessed(
    gateway_factory: Any, place: Any, witness_key: Ed25519PrivateKey, tmp_path: Path
) -> Any:
    """A gateway whose checkpoints the sandbox witness cosigns; (gateway, switch, policy)."""
    switch = Switch()
    server = ServerThread(switch).start()
    cosigner = cosigner_key(WITNESS, witness_key.public_key())
    gateway = gateway_factory.start(
        witnesses=[{"url": server.url, "key": cosigner.text}],
        merge_delay=0.2,
        metrics_token=METRICS,
    )
    keyring = KeyRing.load(gateway.settings.keys_dir)
    switch.app = _witness(gateway, witness_key, tmp_path / "witness-state.json")
    yield gateway, switch, WitnessPolicy((cosigner,), 1), keyring
    server.stop()


async def _read(gateway: Any, person: str) -> None:
    response = await gateway.post(f'{{ citizen(personalId: "{person}") {{ fullName }} }}')
    assert response.status_code == 200, response.text


def _size(note: str) -> int:
    """The tree size a checkpoint states (its second line)."""
    return int(note.split("\n")[1])


async def _witness_down(http: httpx.AsyncClient, switch: Switch) -> str:
    """Put the witness down, let a submission under way end; the checkpoint served then."""
    switch.down = True
    await asyncio.sleep(1.0)
    return (await http.get("/log/checkpoint")).text


async def _cosigned(http: httpx.AsyncClient, policy: WitnessPolicy, at_least: int) -> str:
    """The served checkpoint once it has at least `at_least` leaves (10 s at most)."""
    for _ in range(100):
        answer = await http.get("/log/checkpoint")
        if answer.status_code == 200 and _size(answer.text) >= at_least:
            policy.check(answer.text)
            return answer.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"no cosigned checkpoint of {at_least} leaves: {answer.text}")


async def test_checkpoints_are_cosigned_and_verifiers_ask_for_the_cosignatures(
    witnessed: Any, dataset: Any
) -> None:
    gateway, _switch, policy, keyring = witnessed
    await _read(gateway, dataset.sample.citizens[0])
    async with gateway.client(auth=None) as http:
        note = await _cosigned(http, policy, 2)
        [cosignature] = policy.check(note)
        assert cosignature.witness == WITNESS
        proof = await http.get("/log/tlog-proof", params={"index": 1})
        assert proof.status_code == 200
        # Records written at start (the catalogue's) may still be on their way: the lag
        # comes to none once the witness has cosigned them too.
        for _ in range(100):
            ready = (await http.get("/readyz")).json()
            if ready["witnessLagLeaves"] == {WITNESS: 0}:
                break
            await asyncio.sleep(0.1)
    assert f"\u2014 {WITNESS} " in proof.text  # the offline proof carries the cosignature
    assert ready["witnessLagLeaves"] == {WITNESS: 0}
    key = verifier_key(
        gateway.settings.checkpoint_origin, keyring.verifying("checkpoints")[0].public
    )
    report = await verify_remote(gateway.url, key=key, policy=policy)
    assert report.ok, report.problem
    assert any("cosigned by 1 of the 1 witnesses" in c for c in report.checked)
    # A reader trusting another witness refuses the same checkpoint.
    stranger = cosigner_key("witness.example/other", Ed25519PrivateKey.generate().public_key())
    refused = await verify_remote(gateway.url, key=key, policy=WitnessPolicy((stranger,), 1))
    assert not refused.ok
    assert "0 of the 1 cosignatures" in (refused.problem or "")


async def test_a_witness_that_is_down_delays_cosigning_not_recording(
    witnessed: Any, dataset: Any
) -> None:
    gateway, switch, policy, _keyring = witnessed
    people = dataset.sample.citizens
    await _read(gateway, people[0])
    async with gateway.client(auth=None) as http:
        await _cosigned(http, policy, 2)
        frozen = await _witness_down(http, switch)
        size = _size(frozen)
        for person in people[1:4]:
            await _read(gateway, person)  # recorded and answered all the same
        await gateway.caught_up()
        latest = await http.get("/log/checkpoint/latest")
        grown = _size(latest.text)
        assert grown >= size + 3
        with pytest.raises(CheckpointError):
            policy.check(latest.text)  # not cosigned (yet)
        served = await http.get("/log/checkpoint")
        assert served.text == frozen  # the last one cosigned
        ready = (await http.get("/readyz")).json()
        assert ready["status"] == "ready"
        assert ready["witnessLagLeaves"][WITNESS] >= 3
        switch.down = False
        after = await _cosigned(http, policy, grown)
        assert _size(after) >= grown


async def test_a_forked_checkpoint_is_refused_by_the_witness_and_by_verifiers(
    witnessed: Any, dataset: Any
) -> None:
    gateway, _switch, policy, keyring = witnessed
    await _read(gateway, dataset.sample.citizens[0])
    async with gateway.client(auth=None) as http:
        honest = await _cosigned(http, policy, 2)
    origin = gateway.settings.checkpoint_origin
    size = _size(honest)
    # The operator signs another root for the same size (a second history).
    fork = sign_checkpoint(origin, size, b"\x01" * 32, keyring.signing("checkpoints").private)
    assert parse_checkpoint(fork.note, checkpoint_verifiers(keyring, origin)).size == size
    async with httpx.AsyncClient(base_url=switch_url(gateway)) as http:
        refused = await http.post("/add-checkpoint", content=f"old {size}\n\n{fork.note}")
    assert refused.status_code == 409
    # An older checkpoint shown to a reader as the newest (a rollback) is refused too.
    key = verifier_key(origin, keyring.verifying("checkpoints")[0].public)
    newer = await verify_remote(gateway.url, key=key, previous=honest, policy=policy)
    assert newer.ok, newer.problem
    rolled = await verify_remote(gateway.url, key=key, previous=fork.note, policy=policy)
    assert not rolled.ok


def switch_url(gateway: Any) -> str:
    return str(gateway.settings.witnesses[0].url)


async def test_the_client_library_checks_a_receipt_with_a_witness_policy(
    witnessed: Any, dataset: Any
) -> None:
    from lienthong_client import AsyncGatewayClient, Purpose

    from tests.integration.conftest import AUDIENCE

    gateway, switch, policy, _keyring = witnessed
    person = dataset.sample.citizens[0]
    signer = gateway.signer
    async with AsyncGatewayClient(
        gateway.url, signer.client_id, signer.key, signer.kid, audience=AUDIENCE
    ) as client:
        answer = await client.query(
            "query($id: String!) { citizen(personalId: $id) { fullName } }",
            {"id": person},
            purpose=Purpose("LOCAL.test-every-field", "HS-W-1", "officer-7", (person,)),
        )
        await gateway.caught_up()
        async with gateway.client(auth=None) as http:
            # Cosigned up to the answer's record (others may have come before it).
            latest = _size((await http.get("/log/checkpoint/latest")).text)
            await _cosigned(http, policy, latest)
        proof = await client.inclusion_proof(answer)
        assert proof is not None
        proven = await client.check_inclusion(answer, proof, witnesses=policy)
        assert proven.checkpoint.size >= 1
        # While the witness is down, a newer answer's proof carries no cosignature: a
        # reader holding the policy refuses it, one without takes it as the gateway's word.
        switch.down = True
        later = await client.query(
            "query($id: String!) { citizen(personalId: $id) { fullName } }",
            {"id": person},
            purpose=Purpose("LOCAL.test-every-field", "HS-W-2", "officer-7", (person,)),
        )
        await gateway.caught_up()
        uncosigned = await client.inclusion_proof(later)
        assert uncosigned is not None
        assert await client.check_inclusion(later, uncosigned)
        with pytest.raises(ValueError, match="cosignatures"):
            await client.check_inclusion(later, uncosigned, witnesses=policy)


async def test_a_gateway_that_forgot_where_the_witness_stands_proves_from_its_size(
    witnessed: Any, dataset: Any
) -> None:
    from gateway.storage import create_engine, witness_state

    gateway, _switch, policy, _keyring = witnessed
    people = dataset.sample.citizens
    await _read(gateway, people[0])
    async with gateway.client(auth=None) as http:
        first = await _cosigned(http, policy, 2)
        # A replica with no memory of the witness: it submits from 0, hears 409 and the
        # size the witness has, and proves consistency from there at once.
        engine = create_engine(gateway.settings.database_url.get_secret_value())
        try:
            async with engine.begin() as conn:
                await conn.execute(witness_state.delete())
        finally:
            await engine.dispose()
        await _read(gateway, people[1])
        await gateway.caught_up()
        latest = _size((await http.get("/log/checkpoint/latest")).text)
        after = await _cosigned(http, policy, latest)
    assert _size(after) > _size(first)


async def test_a_witness_that_saw_a_larger_tree_never_cosigns_a_smaller_one(
    gateway_factory: Any, witness_key: Ed25519PrivateKey, tmp_path: Path, dataset: Any
) -> None:
    state = tmp_path / "ahead.json"
    switch = Switch()
    server = ServerThread(switch).start()
    cosigner = cosigner_key(WITNESS, witness_key.public_key())
    try:
        gateway = gateway_factory.start(
            witnesses=[{"url": server.url, "key": cosigner.text}],
            merge_delay=0.2,
            metrics_token=METRICS,
        )
        origin = gateway.settings.checkpoint_origin
        # The witness was shown a tree of a million leaves under this log's name.
        state.write_text(
            f'{{"{origin}": {{"size": 1000000, "root": "{"A" * 43}="}}}}', encoding="utf-8"
        )
        switch.app = _witness(gateway, witness_key, state)
        await _read(gateway, dataset.sample.citizens[0])
        await gateway.caught_up()
        await asyncio.sleep(1.0)  # several turns of witnessing
        async with gateway.client(auth=None) as http:
            served = await http.get("/log/checkpoint")
            assert served.status_code == 404
            assert "/log/checkpoint/latest" in served.json()["message"]
            assert await _forks(http) >= 1
    finally:
        server.stop()


async def test_a_restarted_witness_remembers_what_it_cosigned(
    witnessed: Any, dataset: Any, witness_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    gateway, switch, policy, keyring = witnessed
    people = dataset.sample.citizens
    await _read(gateway, people[0])
    async with gateway.client(auth=None) as http:
        first = await _cosigned(http, policy, 2)
        size = _size(first)
    origin = gateway.settings.checkpoint_origin
    # The witness process again, from its state file: a new app on the same file.
    switch.app = _witness(gateway, witness_key, tmp_path / "witness-state.json")
    # The gateway's earliest checkpoint, offered as if new: the witness knows better.
    early = sign_checkpoint(
        origin, 1, (await _root(gateway, 1)), keyring.signing("checkpoints").private
    )
    async with httpx.AsyncClient(base_url=switch_url(gateway)) as witness:
        rolled = await witness.post("/add-checkpoint", content=f"old 0\n\n{early.note}")
    assert rolled.status_code == 409
    assert int(rolled.text) >= size
    # And goes on cosigning the log as it grows.
    await _read(gateway, people[1])
    await gateway.caught_up()
    async with gateway.client(auth=None) as http:
        grown = _size((await http.get("/log/checkpoint/latest")).text)
        await _cosigned(http, policy, grown)


async def _root(gateway: Any, size: int) -> bytes:
    from gateway.log.store import TransparencyLog
    from gateway.storage import create_engine

    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        return await TransparencyLog(engine, None, origin="x").root(size)
    finally:
        await engine.dispose()


async def test_a_witness_that_cosigned_another_history_raises_the_fork_alarm(
    witnessed: Any, dataset: Any, witness_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    gateway, switch, policy, _keyring = witnessed
    people = dataset.sample.citizens
    await _read(gateway, people[0])
    async with gateway.client(auth=None) as http:
        await _cosigned(http, policy, 2)
        seen = await _witness_down(http, switch)  # its state is changed while it is down
        before = await _forks(http)
        # The witness's record of this log: its size, another root (it was shown a fork).
        state = tmp_path / "witness-state.json"
        origin = gateway.settings.checkpoint_origin
        kept = json.loads(state.read_text(encoding="utf-8"))
        kept[origin]["root"] = base64.b64encode(b"\x02" * 32).decode()
        state.write_text(json.dumps(kept), encoding="utf-8")
        switch.app = _witness(gateway, witness_key, state)
        switch.down = False
        await _read(gateway, people[1])
        await gateway.caught_up()
        for _ in range(150):
            if await _forks(http) > before:
                break
            await asyncio.sleep(0.1)
        assert await _forks(http) > before
        # What readers are served stays the last checkpoint the witness cosigned.
        assert (await http.get("/log/checkpoint")).text == seen
