"""Encryption at rest of what a task reveals: image and callback URLs (their tokens), style
prompts, and webhook secrets, wherever they are kept (the store, the status cache, broker
messages).

One scheme, AES-SIV (RFC 5297, `cryptography`'s AEAD): a sealed value is

    enc1.<key id>.<r|d>.<urlsafe base64>

under the newest of the keys (IMAGEEDITOR_ENCRYPTION_KEYS, newest first; embedded mode makes
one in its data folder). `r` values carry a random nonce, so equal texts seal differently;
`d` values (`seal_lookup`) are deterministic, for columns the store looks rows up by (a
callback URL): `lookups` gives a text's seal under every key, so a lookup finds rows sealed
before a key rotation too. `open` takes any key the sealer holds and lets a value that is not
sealed through unchanged (rows from before encryption; a sealer without keys seals nothing).
`imageeditor db reencrypt` seals everything again under the newest key.

Why AES-SIV rather than Fernet: a deterministic mode is needed for the lookups, and SIV is
safe in it; one scheme then serves both, and its tokens are short enough for the columns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from imageeditor.core.errors import Internal
from imageeditor.core.settings import Settings, bad_setting

PREFIX = "enc1."
KEY_BYTES = 64  # AES-256-SIV
NONCE_BYTES = 16
KEY_VARIABLE = "IMAGEEDITOR_ENCRYPTION_KEYS"


def new_key() -> str:
    """A new key, as IMAGEEDITOR_ENCRYPTION_KEYS takes it (urlsafe base64 of 64 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(text: str) -> bytes:
    """A key's bytes; BAD_SETTING if it is not 64 bytes of urlsafe base64."""
    try:
        key = _unpadded_b64decode(text.strip())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise bad_setting(
            KEY_VARIABLE,
            f"each key is {KEY_BYTES} bytes of urlsafe base64 (make one with `imageeditor keys"
            " encryption-key`)",
        )
    return key


class Sealer:
    """Seals and opens text with AES-SIV keys, newest first (none: nothing is sealed)."""

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        self._keys = [(_key_id(key), AESSIV(key)) for key in keys]
        self._by_id = dict(self._keys)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Sealer:
        return cls([parse_key(text) for text in texts if text.strip()])

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def seal(self, text: str) -> str:
        """`text` sealed with a random nonce under the newest key ("" stays "")."""
        if not self._keys or not text:
            return text
        nonce = os.urandom(NONCE_BYTES)
        key_id, cipher = self._keys[0]
        sealed = cipher.encrypt(text.encode(), [nonce])
        return _format(key_id, "r", nonce + sealed)

    def seal_lookup(self, text: str) -> str:
        """`text` sealed deterministically under the newest key: equal texts, equal seals."""
        if not self._keys or not text:
            return text
        return _deterministic(*self._keys[0], text)

    def lookups(self, text: str) -> list[str]:
        """Every value a row sealed with `seal_lookup` (under any of the keys, or before
        encryption) may hold for `text`."""
        if not text:
            return [text]
        return [*(_deterministic(key_id, cipher, text) for key_id, cipher in self._keys), text]

    def open(self, value: str) -> str:
        """The text `value` seals; `value` itself if it is not sealed."""
        if not value.startswith(PREFIX):
            return value
        try:
            _, key_id, mode, body = value.split(".", 3)
            data = _unpadded_b64decode(body)
        except (ValueError, binascii.Error):
            raise Internal("a sealed value is damaged", reason="SEALED_VALUE_DAMAGED") from None
        cipher = self._by_id.get(key_id)
        if cipher is None:
            raise Internal(
                f"a value is sealed under key {key_id}, which {KEY_VARIABLE} no longer holds",
                reason="ENCRYPTION_KEY_MISSING",
            )
        try:
            if mode == "r":
                return cipher.decrypt(data[NONCE_BYTES:], [data[:NONCE_BYTES]]).decode()
            return cipher.decrypt(data, None).decode()
        except InvalidTag:
            raise Internal(
                "a sealed value failed its check", reason="SEALED_VALUE_DAMAGED"
            ) from None

    def is_current(self, value: str) -> bool:
        """Whether `value` is sealed under the newest key (or there is none to seal with)."""
        if not self._keys:
            return True
        return not value or value.startswith(f"{PREFIX}{self._keys[0][0]}.")


NO_SEALING = Sealer()
"""Seals nothing and opens only what is not sealed: for values that never leave memory."""


def embedded_key(path: Path) -> str:
    """The key embedded mode keeps in its data folder (0600), made on first use."""
    if path.exists():
        return path.read_text().strip()
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def _deterministic(key_id: str, cipher: AESSIV, text: str) -> str:
    return _format(key_id, "d", cipher.encrypt(text.encode(), None))


def _unpadded_b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _format(key_id: str, mode: str, data: bytes) -> str:
    return f"{PREFIX}{key_id}.{mode}.{base64.urlsafe_b64encode(data).decode().rstrip('=')}"


def sealer_from_settings(settings: Settings) -> Sealer:
    """The keys IMAGEEDITOR_ENCRYPTION_KEYS names; without them, embedded mode's own key (made
    on first use in the data folder), and in production BAD_SETTING: several processes must
    share the keys, so none can make its own."""
    if settings.encryption_keys:
        return Sealer.from_texts(settings.encryption_keys)
    if settings.is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Sealer.from_texts([embedded_key(settings.encryption_key_path)])
    raise bad_setting(
        KEY_VARIABLE,
        "required in production mode, the same on every server and worker (make a key with"
        " `imageeditor keys encryption-key`)",
    )
