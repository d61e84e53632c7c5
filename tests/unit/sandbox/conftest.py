"""Fixtures for the sandbox unit tests: one small dataset shared by the session."""

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox import Dataset, SandboxSettings, business, generate, population

SMALL = 500


@pytest.fixture(scope="session")
def small_settings() -> SandboxSettings:
    return SandboxSettings(citizens=SMALL, max_batch=100, latency_ms=0)


@pytest.fixture(scope="session")
def small_dataset(small_settings: SandboxSettings) -> Dataset:
    return generate(small_settings)


@pytest.fixture
async def population_client(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> AsyncIterator[httpx.AsyncClient]:
    app = population.create_app(small_settings, small_dataset)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://population") as client:
        yield client


@pytest.fixture
async def business_client(
    small_settings: SandboxSettings, small_dataset: Dataset
) -> AsyncIterator[httpx.AsyncClient]:
    app = business.create_app(small_settings, small_dataset)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://business") as client:
        yield client
