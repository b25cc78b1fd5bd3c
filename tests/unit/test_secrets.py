"""Rule 11 (temporary passwords), sealing for delivery, and signed link tokens."""

from __future__ import annotations

import secrets
import string
from uuid import uuid4

import pytest
from cryptography.exceptions import InvalidTag

from shared.secrets import (
    HashCost,
    Sealer,
    TempPasswordHasher,
    TokenSigner,
    generate_temp_password,
    token_hash,
)

SAMPLES = 2_000
LOOK_ALIKES = set("0O1lIo|`'\" ")
SYMBOLS = set(string.punctuation)


@pytest.fixture(scope="module")
def samples() -> list[str]:
    return [generate_temp_password() for _ in range(SAMPLES)]


def test_temp_passwords_have_at_least_sixteen_characters(samples: list[str]) -> None:
    assert min(len(p) for p in samples) >= 16


def test_every_temp_password_has_upper_lower_digit_and_symbol(samples: list[str]) -> None:
    for password in samples:
        assert any(c.isupper() for c in password), password
        assert any(c.islower() for c in password), password
        assert any(c.isdigit() for c in password), password
        assert any(c in SYMBOLS for c in password), password


def test_temp_passwords_have_no_look_alike_characters(samples: list[str]) -> None:
    used = set("".join(samples))
    assert not used & LOOK_ALIKES
    assert used <= set(string.ascii_letters + string.digits) | SYMBOLS


def test_temp_passwords_never_repeat(samples: list[str]) -> None:
    assert len(set(samples)) == len(samples)


def test_temp_passwords_use_the_whole_alphabet(samples: list[str]) -> None:
    # A CSPRNG over ~70 symbols touches every one of them in 40,000 draws.
    assert len(set("".join(samples))) >= 60


def test_longer_temp_password_can_be_asked_for() -> None:
    assert len(generate_temp_password(32)) == 32


def test_temp_password_shorter_than_sixteen_is_refused() -> None:
    with pytest.raises(ValueError, match="16"):
        generate_temp_password(15)


def test_hash_verifies_only_its_own_password() -> None:
    hasher = TempPasswordHasher(HashCost(time_cost=1, memory_kib=8, parallelism=1))
    password = generate_temp_password()
    password_hash = hasher.hash(password)
    assert password not in password_hash
    assert hasher.verify(password_hash, password) is True
    assert hasher.verify(password_hash, generate_temp_password()) is False


# -- sealing ---------------------------------------------------------------------------------


def test_sealed_password_opens_with_its_id_and_key() -> None:
    key, temp_id, password = secrets.token_bytes(32), uuid4(), generate_temp_password()
    sealed = Sealer(key).seal(temp_id, password)
    assert password.encode() not in sealed
    assert Sealer(key).unseal(temp_id, sealed) == password


def test_sealing_twice_gives_different_ciphertexts() -> None:
    sealer, temp_id = Sealer(secrets.token_bytes(32)), uuid4()
    assert sealer.seal(temp_id, "same-password") != sealer.seal(temp_id, "same-password")


def test_tampered_sealed_copy_is_refused() -> None:
    sealer, temp_id = Sealer(secrets.token_bytes(32)), uuid4()
    sealed = bytearray(sealer.seal(temp_id, generate_temp_password()))
    sealed[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        sealer.unseal(temp_id, bytes(sealed))


def test_sealed_copy_does_not_open_under_another_id() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    sealed = sealer.seal(uuid4(), generate_temp_password())
    with pytest.raises(InvalidTag):
        sealer.unseal(uuid4(), sealed)


def test_sealed_copy_does_not_open_under_another_key() -> None:
    temp_id = uuid4()
    sealed = Sealer(secrets.token_bytes(32)).seal(temp_id, generate_temp_password())
    with pytest.raises(InvalidTag):
        Sealer(secrets.token_bytes(32)).unseal(temp_id, sealed)


# -- link tokens -----------------------------------------------------------------------------


def test_token_carries_its_invitation_and_generation() -> None:
    signer, invitation_id = TokenSigner(secrets.token_bytes(32)), uuid4()
    claim = signer.verify(signer.token(invitation_id, 3))
    assert claim is not None
    assert (claim.invitation_id, claim.link_generation) == (invitation_id, 3)


def test_token_is_url_safe_and_names_no_id_in_clear() -> None:
    invitation_id = uuid4()
    token = TokenSigner(secrets.token_bytes(32)).token(invitation_id, 1)
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert str(invitation_id) not in token


def test_each_generation_has_its_own_token() -> None:
    signer, invitation_id = TokenSigner(secrets.token_bytes(32)), uuid4()
    assert signer.token(invitation_id, 1) != signer.token(invitation_id, 2)


def test_tampered_token_is_refused() -> None:
    signer = TokenSigner(secrets.token_bytes(32))
    token = signer.token(uuid4(), 1)
    for i in range(len(token)):
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert signer.verify(flipped) is None, i


def test_token_signed_with_another_key_is_refused() -> None:
    token = TokenSigner(secrets.token_bytes(32)).token(uuid4(), 1)
    assert TokenSigner(secrets.token_bytes(32)).verify(token) is None


@pytest.mark.parametrize("garbage", ["", "x", "not a token!", "%%%%", "A" * 48, "A" * 512])
def test_garbage_is_not_a_token(garbage: str) -> None:
    assert TokenSigner(secrets.token_bytes(32)).verify(garbage) is None


def test_token_hash_is_a_stable_digest_that_hides_the_token() -> None:
    token = TokenSigner(secrets.token_bytes(32)).token(uuid4(), 1)
    assert token_hash(token) == token_hash(token)
    assert len(token_hash(token)) == 64
    assert token not in token_hash(token)
