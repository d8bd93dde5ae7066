"""API keys: `iek_` + 32 random bytes (urlsafe base64), stored only as a SHA-256 hash.

Keys are high-entropy random secrets, so a fast unsalted hash is enough to make a stolen
database useless for calling us, and it keeps the lookup an indexed equality match.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from imageeditor.core.ports import ApiKey, ApiKeyStore
from imageeditor.core.task import utcnow

KEY_PREFIX = "iek_"


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def mask_api_key(plaintext: str) -> str:
    """A form safe for logs: the prefix and the last four characters."""
    return f"{plaintext[:4]}…{plaintext[-4:]}" if len(plaintext) > 12 else "…"


def create_api_key(store: ApiKeyStore, name: str, user_id: str | None = None) -> tuple[str, ApiKey]:
    """Make a new key for `user_id` (default: a user named after the key). Returns the
    plaintext, shown once, and the stored record."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        id=str(uuid.uuid4()),
        name=name,
        user_id=user_id or name,
        key_hash=hash_api_key(plaintext),
        created_at=utcnow(),
    )
    store.add_api_key(record)
    return plaintext, record
