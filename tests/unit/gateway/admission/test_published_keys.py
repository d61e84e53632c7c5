"""Key sets clients publish: kept a while, read again for a new kid, at most so often."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from joserfc.jwk import ECKey, OKPKey

from gateway.admission import PublishedKeys

URL = "https://keys.example.vn/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _jwk(kid: str) -> dict[str, Any]:
    return {**OKPKey.generate_key("Ed25519").as_dict(private=False), "kid": kid}


class Source:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.reads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.reads += 1
        answer = self.answers[min(self.reads, len(self.answers)) - 1]
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, content=orjson.dumps(answer))


def _keys(source: Source, clock: Clock, **options: Any) -> PublishedKeys:
    http = httpx.AsyncClient(transport=httpx.MockTransport(source))
    return PublishedKeys(http, clock=clock, **options)


async def test_a_set_is_kept_for_its_ttl_and_read_again_for_a_new_kid() -> None:
    one, two = _jwk("a"), _jwk("b")
    source, clock = Source({"keys": [one]}, {"keys": [one, two]}), Clock()
    keys = _keys(source, clock, ttl=300, min_refetch=30)
    assert (await keys.key(URL, "a"))["x"] == one["x"]
    assert await keys.key(URL, "a") is not None
    assert source.reads == 1
    # A kid it does not hold: read again only once `min_refetch` has passed.
    assert await keys.key(URL, "b") is None
    assert source.reads == 1
    clock.now += 31
    assert (await keys.key(URL, "b"))["x"] == two["x"]
    assert source.reads == 2


async def test_a_key_no_longer_published_goes_with_the_next_read() -> None:
    one = _jwk("a")
    source, clock = Source({"keys": [one]}, {"keys": []}), Clock()
    keys = _keys(source, clock, ttl=10, min_refetch=0)
    assert await keys.key(URL, "a") is not None
    clock.now += 11
    assert await keys.key(URL, "a") is None


async def test_bad_answers_keep_what_was_read_before_and_bad_keys_are_skipped() -> None:
    good = _jwk("a")
    private = {**OKPKey.generate_key("Ed25519").as_dict(private=True), "kid": "p"}
    rsa_like = {"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}
    p384 = {**ECKey.generate_key("P-384").as_dict(private=False), "kid": "e"}
    odd_kid = {**_jwk("x"), "kid": "stolen key#1"}  # no registry could revoke it
    source = Source(
        {"keys": [good, private, rsa_like, p384, odd_kid, {"kid": 5}, "text"]},
        httpx.Response(503),
        httpx.Response(200, content=b"not json"),
        {"nokeys": []},
        httpx.Response(200, content=b"x" * 70_000),
    )
    clock = Clock()
    keys = _keys(source, clock, ttl=1, min_refetch=5)
    assert await keys.key(URL, "a") is not None
    for kid in ("p", "r", "e", "stolen key#1"):
        assert await keys.key(URL, kid) is None
    reads = source.reads
    assert reads == 1
    for _ in range(4):  # down, not JSON, not a JWKS, too large: the keys read before stay
        clock.now += 6
        assert await keys.key(URL, "a") is not None
        assert source.reads == reads + 1
        reads = source.reads


async def test_one_read_at_a_time_per_url() -> None:
    one = _jwk("a")
    started = asyncio.Event()
    release = asyncio.Event()
    reads = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal reads
        reads += 1
        started.set()
        await release.wait()
        return httpx.Response(200, content=orjson.dumps({"keys": [one]}))

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    keys = PublishedKeys(http, clock=Clock())
    waiting = [asyncio.ensure_future(keys.key(URL, "a")) for _ in range(5)]
    await started.wait()
    release.set()
    found = await asyncio.gather(*waiting)
    assert all(f is not None for f in found)
    assert reads == 1


async def test_a_set_not_read_for_too_long_is_not_trusted_and_a_slow_one_is_cut_off() -> None:
    one = _jwk("a")
    source, clock = Source({"keys": [one]}, httpx.Response(503)), Clock()
    keys = _keys(source, clock, ttl=10, min_refetch=0, max_stale=100)
    assert await keys.key(URL, "a") is not None
    clock.now += 50  # unreadable since, within the allowance: the keys read before
    assert await keys.key(URL, "a") is not None
    clock.now += 100  # beyond it: none
    assert await keys.key(URL, "a") is None

    async def trickle(request: httpx.Request) -> httpx.Response:
        async def body():  # a byte every half second, for ever
            while True:
                await asyncio.sleep(0.5)
                yield b" "

        return httpx.Response(200, content=body())

    http = httpx.AsyncClient(transport=httpx.MockTransport(trickle))
    slow = PublishedKeys(http, timeout=0.3)
    started = asyncio.get_running_loop().time()
    assert await slow.key(URL, "a") is None
    assert asyncio.get_running_loop().time() - started < 2
