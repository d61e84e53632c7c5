"""The continuity guard: the log signs nothing that does not continue what was published."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lienthong_client.log import Checkpoint, CheckpointError, cosigner_key, sign_checkpoint

from gateway.errors import LogBehindPublished, LogInconsistentWithPublished
from gateway.log import epoch_of, epoch_origin, family_verifiers
from gateway.log.continuity import ContinuityGuard, PublishedFile, ask_witness, compare
from gateway.log.witnessing import SIZE_MEDIA_TYPE, Witness
from keys import NoteVerifier, note_key_id

BASE = "gateway.example.gov.vn/log"
KEY = Ed25519PrivateKey.generate()
VERIFIERS = [NoteVerifier(BASE, note_key_id(BASE, KEY.public_key()), KEY.public_key())]


def _root(size: int, variant: bytes = b"") -> bytes:
    return hashlib.sha256(variant + str(size).encode()).digest()


def _checkpoint(size: int, origin: str = BASE, variant: bytes = b"") -> Checkpoint:
    return sign_checkpoint(origin, size, _root(size, variant), KEY)


async def _roots(size: int) -> bytes:
    return _root(size)


def test_epochs_are_named_after_the_configured_origin() -> None:
    assert epoch_origin(BASE, 1) == BASE
    assert epoch_origin(BASE, 2) == f"{BASE}/epoch-2"
    assert epoch_of(BASE, BASE) == 1
    assert epoch_of(BASE, f"{BASE}/epoch-12") == 12
    for other in (f"{BASE}/epoch-1", f"{BASE}/epoch-02", f"{BASE}/epoch-x", "other.example/log"):
        assert epoch_of(BASE, other) is None


async def test_a_log_smaller_than_a_published_checkpoint_names_the_missing_leaves() -> None:
    with pytest.raises(LogBehindPublished) as raised:
        await compare(BASE, _checkpoint(5), _checkpoint(9), _roots, source="the file")
    assert raised.value.detail["missing"] == [5, 8]
    assert raised.value.detail["size"] == 5
    assert raised.value.detail["publishedSize"] == 9
    assert "leaves 5 to 8 are missing" in raised.value.message


async def test_a_log_with_another_root_at_a_published_size_is_inconsistent() -> None:
    other = _checkpoint(4, variant=b"fork")
    with pytest.raises(LogInconsistentWithPublished):
        await compare(BASE, _checkpoint(9), other, _roots, source="the file")


async def test_a_log_that_extends_the_published_checkpoint_continues() -> None:
    await compare(BASE, _checkpoint(9), _checkpoint(4), _roots, source="the file")
    await compare(BASE, _checkpoint(9), _checkpoint(9), _roots, source="the file")
    await compare(BASE, _checkpoint(9), _checkpoint(0), _roots, source="the file")


async def test_an_epoch_closed_by_a_declared_loss_is_no_longer_compared() -> None:
    later = _checkpoint(6, epoch_origin(BASE, 2))
    await compare(BASE, later, _checkpoint(50), _roots, source="the file")
    # A database older than the declaration is behind the newer epoch.
    with pytest.raises(LogBehindPublished) as raised:
        await compare(BASE, _checkpoint(50), later, _roots, source="the file")
    assert raised.value.detail["publishedOrigin"] == f"{BASE}/epoch-2"
    # Another log's checkpoint says nothing of this one.
    await compare(BASE, _checkpoint(5), _checkpoint(9, "other.example/log"), _roots, source="x")


def _witness(
    answer: Callable[[httpx.Request], httpx.Response],
) -> tuple[Witness, httpx.AsyncClient]:
    name = "witness.example/w1"
    key = cosigner_key(name, Ed25519PrivateKey.generate().public_key()).text
    return Witness.of("http://witness.test", key), httpx.AsyncClient(
        transport=httpx.MockTransport(answer)
    )


def _size(size: int) -> httpx.Response:
    return httpx.Response(409, text=f"{size}\n", headers={"Content-Type": SIZE_MEDIA_TYPE})


async def _proof(old: int, new: int) -> list[bytes]:
    return [_root(old) for _ in range(2)]


async def test_a_witness_with_a_larger_tree_says_the_log_is_behind() -> None:
    witness, http = _witness(lambda _request: _size(12))
    async with http:
        with pytest.raises(LogBehindPublished) as raised:
            await ask_witness(http, witness, _checkpoint(7), _proof)
    assert raised.value.detail["source"] == "the witness witness.example/w1"
    assert raised.value.detail["missing"] == [7, 11]


async def test_a_witness_at_the_same_size_that_refuses_holds_another_root() -> None:
    witness, http = _witness(lambda _request: _size(7))
    async with http:
        with pytest.raises(LogInconsistentWithPublished):
            await ask_witness(http, witness, _checkpoint(7), _proof)


async def test_a_witness_behind_is_asked_with_the_proof_from_its_size() -> None:
    bodies: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content.decode())
        return _size(3) if len(bodies) == 1 else httpx.Response(422, text="no\n")

    witness, http = _witness(answer)
    async with http:
        with pytest.raises(LogInconsistentWithPublished):
            await ask_witness(http, witness, _checkpoint(7), _proof)
    assert bodies[0].startswith("old 7\n\n")
    assert bodies[1].startswith("old 3\n")
    assert bodies[1].count("\n") > 4

    calls: list[int] = []

    def agrees(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return _size(3) if len(calls) == 1 else httpx.Response(200, text="\u2014 w sig\n")

    witness, http = _witness(agrees)
    async with http:
        await ask_witness(http, witness, _checkpoint(7), _proof)


@pytest.mark.parametrize(
    "answer",
    [
        lambda _r: httpx.Response(200, text="\u2014 cosigned\n"),
        lambda _r: httpx.Response(404, text="unknown log origin\n"),
        lambda _r: httpx.Response(503, text="down\n"),
        lambda _r: httpx.Response(409, text="12\n"),  # not the size's media type
    ],
)
async def test_a_witness_that_says_nothing_of_a_larger_tree_stops_nothing(
    answer: Callable[[httpx.Request], httpx.Response],
) -> None:
    witness, http = _witness(answer)
    async with http:
        await ask_witness(http, witness, _checkpoint(7), _proof)


async def test_an_unreachable_witness_stops_nothing() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    witness, http = _witness(down)
    async with http:
        await ask_witness(http, witness, _checkpoint(7), _proof)


def test_the_published_file_holds_a_checkpoint_of_this_log(tmp_path: Path) -> None:
    published = PublishedFile(tmp_path / "state" / "published")
    assert published.read(BASE, VERIFIERS) is None
    later = _checkpoint(3, epoch_origin(BASE, 2))
    published.write(later.note)
    assert published.read(BASE, VERIFIERS) == later
    other_key = Ed25519PrivateKey.generate()
    published.write(sign_checkpoint(BASE, 3, _root(3), other_key).note)
    with pytest.raises(CheckpointError):
        published.read(BASE, VERIFIERS)
    published.write(_checkpoint(3, "other.example/log").note)
    with pytest.raises(CheckpointError, match="another log"):
        published.read(BASE, VERIFIERS)
    assert [v.name for v in family_verifiers(VERIFIERS, later.origin)] == [later.origin]


class _Store:
    """The part of the log's store the guard reads."""

    def __init__(self, latest: Checkpoint) -> None:
        self.base_origin = BASE
        self.latest_checkpoint = latest

    async def latest(self) -> Checkpoint:
        return self.latest_checkpoint

    async def root(self, size: int) -> bytes:
        return _root(size)

    async def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return await _proof(old, new)


async def test_the_guard_halts_until_the_log_continues_the_published_file(tmp_path: Path) -> None:
    store = _Store(_checkpoint(5))
    published = PublishedFile(tmp_path / "published")
    published.write(_checkpoint(9).note)
    guard = ContinuityGuard(store, VERIFIERS, published=published)  # type: ignore[arg-type]
    assert not await guard.allows()
    assert isinstance(guard.halted, LogBehindPublished)
    assert guard.halted.detail["missing"] == [5, 8]
    # The missing leaves are back (a newer backup): the guard lets it sign again.
    store.latest_checkpoint = _checkpoint(9)
    assert await guard.allows()
    assert guard.halted is None
    # What it signs next goes to the file; an older checkpoint never replaces a newer.
    await guard.signed(_checkpoint(10))
    assert published.read(BASE, VERIFIERS) == _checkpoint(10)
    await guard.signed(_checkpoint(8))
    assert published.read(BASE, VERIFIERS) == _checkpoint(10)
    await guard.signed(_checkpoint(1, epoch_origin(BASE, 2)))
    assert published.read(BASE, VERIFIERS) == _checkpoint(1, epoch_origin(BASE, 2))


async def test_the_guard_starts_the_published_file_when_there_is_none(tmp_path: Path) -> None:
    published = PublishedFile(tmp_path / "published")
    guard = ContinuityGuard(_Store(_checkpoint(4)), VERIFIERS, published=published)  # type: ignore[arg-type]
    assert await guard.allows()
    assert published.read(BASE, VERIFIERS) == _checkpoint(4)


class _Racing(_Store):
    """A store another replica signs in while the guard reads: the newest grows once."""

    def __init__(self, first: Checkpoint, then: Checkpoint) -> None:
        super().__init__(first)
        self.then = then

    async def latest(self) -> Checkpoint:
        current, self.latest_checkpoint = self.latest_checkpoint, self.then
        return current


async def test_a_checkpoint_another_replica_published_meanwhile_is_no_loss(
    tmp_path: Path,
) -> None:
    published = PublishedFile(tmp_path / "published")
    published.write(_checkpoint(9).note)  # written by the replica that signed it
    store = _Racing(_checkpoint(5), _checkpoint(9))
    guard = ContinuityGuard(store, VERIFIERS, published=published)  # type: ignore[arg-type]
    assert await guard.allows()

    def larger(_request: httpx.Request) -> httpx.Response:
        return _size(9) if "\n5\n" in _request.content.decode() else httpx.Response(200)

    witness, http = _witness(larger)
    guard = ContinuityGuard(
        _Racing(_checkpoint(5), _checkpoint(9)),  # type: ignore[arg-type]
        VERIFIERS,
        witnesses=[witness],
        http=http,
    )
    assert await guard.allows()
    await guard.aclose()
