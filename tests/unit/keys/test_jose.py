"""The registry every request token is checked with: EdDSA without joserfc's warning."""

from __future__ import annotations

import warnings

import pytest
from joserfc import jws
from joserfc.errors import BadSignatureError, SecurityWarning, UnsupportedAlgorithmError
from joserfc.jwk import OKPKey

from keys import eddsa_allowed, verifying_registry

KEY = OKPKey.generate_key("Ed25519")


def _token(alg: str = "EdDSA") -> str:
    with eddsa_allowed():
        return str(jws.serialize_compact({"alg": alg}, b"{}", KEY, algorithms=[alg]))


def test_eddsa_is_checked_without_a_warning_and_joserfc_still_warns_elsewhere() -> None:
    public = OKPKey.import_key(KEY.as_dict(private=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jws.deserialize_compact(_token(), public, registry=verifying_registry("EdDSA"))
    # joserfc's own registry is untouched: its EdDSA still warns.
    with pytest.warns(SecurityWarning, match="EdDSA is deprecated"):
        jws.deserialize_compact(_token(), public, algorithms=["EdDSA"])


def test_only_the_named_algorithm_is_allowed() -> None:
    public = OKPKey.import_key(KEY.as_dict(private=False))
    with pytest.raises(UnsupportedAlgorithmError):
        jws.deserialize_compact(_token("Ed25519"), public, registry=verifying_registry("EdDSA"))
    assert verifying_registry("EdDSA") is verifying_registry("EdDSA")


def test_an_altered_token_is_refused_and_an_ed448_key_still_checks() -> None:
    public = OKPKey.import_key(KEY.as_dict(private=False))
    header, payload, signature = _token().split(".")
    altered = f"{header}.{payload[:-2]}e30.{signature}"  # another payload
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(altered, public, registry=verifying_registry("EdDSA"))
    # Ed448 keys are joserfc's own to check.
    ed448 = OKPKey.generate_key("Ed448")
    with eddsa_allowed():
        token = str(jws.serialize_compact({"alg": "EdDSA"}, b"{}", ed448, algorithms=["EdDSA"]))
    ed448_public = OKPKey.import_key(ed448.as_dict(private=False))
    assert jws.deserialize_compact(token, ed448_public, registry=verifying_registry("EdDSA"))
