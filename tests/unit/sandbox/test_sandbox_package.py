import types

import pytest

import sandbox
from sandbox import SandboxSettings


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(sandbox).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sandbox.__all__ == sorted(sandbox.__all__, key=_isort_key)
    assert set(sandbox.__all__) == public


def test_settings_defaults_and_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CITIZENS", "SEED", "MAX_BATCH", "LATENCY_MS"):
        monkeypatch.delenv(f"SANDBOX_{name}", raising=False)
    defaults = SandboxSettings()
    assert (defaults.citizens, defaults.seed, defaults.max_batch) == (10_000, 20250701, 100)
    assert (defaults.population_port, defaults.business_port) == (8101, 8102)
    assert defaults.host == "127.0.0.1"
    assert defaults.latency_ms == 0
    monkeypatch.setenv("SANDBOX_CITIZENS", "1234")
    monkeypatch.setenv("SANDBOX_LATENCY_MS", "2.5")
    configured = SandboxSettings()
    assert configured.citizens == 1234
    assert configured.latency_ms == 2.5
    assert SandboxSettings(citizens=7).citizens == 7
