"""Each user's webhook secrets: made on first need, rotated with an overlap.

Callbacks are signed with every active secret of their user (imageeditor/core/webhooks.py), so a
rotation never breaks a receiver: the new secret signs at once, the old ones keep signing for
the overlap while the receiver switches, then they expire.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from imageeditor.core.ports import WebhookSecret, WebhookSecretStore
from imageeditor.core.task import utcnow
from imageeditor.core.webhooks import new_webhook_secret

# Long enough for a receiver's owner to deploy the new secret in working hours.
DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)


def ensure_webhook_secret(
    store: WebhookSecretStore, user_id: str, now: datetime | None = None
) -> list[WebhookSecret]:
    """The user's active secrets, newest first; a first one is made when there is none.

    Two callers racing on a user without one may both make one: both are active and both
    sign, which a receiver holding either accepts.
    """
    moment = now or utcnow()
    active = store.webhook_secrets(user_id, moment)
    if active:
        return active
    return [_add_new(store, user_id, moment)]


def rotate_webhook_secret(
    store: WebhookSecretStore,
    user_id: str,
    overlap: timedelta = DEFAULT_ROTATION_OVERLAP,
    now: datetime | None = None,
) -> WebhookSecret:
    """Make a new secret; every older one stops signing at `now + overlap` (at once for a
    zero overlap; one due to stop sooner keeps its time)."""
    if overlap < timedelta(0):
        raise ValueError(f"a rotation overlap cannot be negative: {overlap}")
    moment = now or utcnow()
    # Expire first: the new secret must not be caught by it. Should the process die between
    # the two, the next ensure_webhook_secret makes a secret if none is left active.
    store.expire_webhook_secrets(user_id, moment + overlap)
    return _add_new(store, user_id, moment)


def _add_new(store: WebhookSecretStore, user_id: str, now: datetime) -> WebhookSecret:
    secret = WebhookSecret(
        id=str(uuid.uuid4()), user_id=user_id, secret=new_webhook_secret(), created_at=now
    )
    store.add_webhook_secret(secret)
    return secret
