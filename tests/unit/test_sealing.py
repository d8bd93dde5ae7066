"""Sealing: AES-SIV under the newest key, opened under any; lookups across a rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageeditor.core.errors import Internal, InvalidArgument
from imageeditor.core.sealing import NO_SEALING, Sealer, new_key, parse_key, sealer_from_settings
from imageeditor.core.settings import Settings

OLD, NEW = new_key(), new_key()
URL = "https://hooks.example.com/in?token=s3cr3t"


def test_a_sealed_value_shows_nothing_and_opens_to_the_text() -> None:
    sealer = Sealer.from_texts([NEW])
    sealed = sealer.seal(URL)
    assert "s3cr3t" not in sealed and "hooks" not in sealed
    assert sealed.startswith("enc1.") and sealer.open(sealed) == URL
    assert sealer.seal(URL) != sealed  # a random nonce each time
    assert sealer.seal("") == ""


def test_lookup_seals_are_equal_for_equal_texts_under_one_key() -> None:
    sealer = Sealer.from_texts([NEW])
    assert sealer.seal_lookup(URL) == sealer.seal_lookup(URL)
    assert sealer.open(sealer.seal_lookup(URL)) == URL
    assert sealer.seal_lookup(URL) != sealer.seal_lookup(URL + "x")


def test_after_a_rotation_old_values_still_open_and_are_still_found() -> None:
    before = Sealer.from_texts([OLD])
    stored, stored_lookup = before.seal(URL), before.seal_lookup(URL)
    after = Sealer.from_texts([NEW, OLD])

    assert after.open(stored) == URL
    assert stored_lookup in after.lookups(URL)  # the query finds the row sealed before
    assert after.seal_lookup(URL) in after.lookups(URL)
    assert URL in after.lookups(URL)  # and a row written before encryption
    assert not after.is_current(stored) and after.is_current(after.seal(URL))


def test_a_value_sealed_under_a_dropped_key_is_a_clear_error() -> None:
    stored = Sealer.from_texts([OLD]).seal(URL)
    with pytest.raises(Internal) as refused:
        Sealer.from_texts([NEW]).open(stored)
    assert refused.value.reason == "ENCRYPTION_KEY_MISSING"
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(Internal) as damaged:
        Sealer.from_texts([OLD]).open(tampered)
    assert damaged.value.reason == "SEALED_VALUE_DAMAGED"


def test_values_in_clear_pass_through_and_no_keys_seal_nothing() -> None:
    assert Sealer.from_texts([NEW]).open(URL) == URL
    assert NO_SEALING.seal(URL) == URL and NO_SEALING.seal_lookup(URL) == URL
    assert not NO_SEALING.enabled


@pytest.mark.parametrize("text", ["short", "", "not base64 !!", new_key()[:40]])
def test_a_key_must_be_64_bytes_of_base64(text: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_key(text)
    assert refused.value.reason == "BAD_SETTING"


def test_embedded_mode_makes_its_own_key_and_production_needs_one(tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path)
    first = sealer_from_settings(embedded)
    assert (tmp_path / "encryption-key").stat().st_mode & 0o777 == 0o600
    assert sealer_from_settings(embedded).open(first.seal(URL)) == URL  # the same key again

    with pytest.raises(InvalidArgument) as refused:
        sealer_from_settings(Settings(redis_url="redis://r"))
    assert refused.value.reason == "BAD_SETTING"
    given = sealer_from_settings(Settings(redis_url="redis://r", encryption_keys=(NEW, OLD)))
    assert given.open(Sealer.from_texts([OLD]).seal(URL)) == URL
