import orjson
import pytest

from sandbox import SandboxSettings, generate
from sandbox.cli import main


def test_sample_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--citizens", "300", "--seed", "7"]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    expected = generate(SandboxSettings(citizens=300, seed=7)).sample.to_json()
    assert printed == expected
    assert set(printed) == {"citizens", "households", "businesses"}


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["registry"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
