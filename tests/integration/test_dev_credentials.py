"""Embedded mode's development credentials: the API key and the webhook secret it keeps in
the data directory for the CLI, the SDK and a developer's callback receiver."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
from imageeditor.core.adapters.sql.engine import create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.apikeys import hash_api_key
from imageeditor.core.settings import Settings
from imageeditor.core.task import utcnow
from imageeditor.core.webhook_secrets import rotate_webhook_secret
from imageeditor.embedded.main import ensure_dev_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def stores(settings: Settings) -> Iterator[tuple[SqlTaskStore, SqlCallbackStore]]:
    url = settings.effective_database_url
    upgrade_database(url)
    engine = create_engine_for(url)
    yield SqlTaskStore(engine), SqlCallbackStore(engine)
    engine.dispose()


def private_text(path: Path) -> str:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text().strip()


def test_the_dev_key_and_webhook_secret_are_made_once_and_kept_private(
    settings: Settings, stores: tuple[SqlTaskStore, SqlCallbackStore]
) -> None:
    store, secrets = stores
    ensure_dev_key(store, secrets, settings)
    key = private_text(settings.dev_key_path)
    secret = private_text(settings.dev_webhook_secret_path)

    record = store.find_api_key(hash_api_key(key))
    assert record is not None and record.user_id == "dev"
    assert [s.secret for s in secrets.webhook_secrets("dev", utcnow())] == [secret]

    ensure_dev_key(store, secrets, settings)  # the next start
    assert private_text(settings.dev_key_path) == key
    assert private_text(settings.dev_webhook_secret_path) == secret


def test_the_file_follows_a_rotation_of_the_dev_secret(
    settings: Settings, stores: tuple[SqlTaskStore, SqlCallbackStore]
) -> None:
    store, secrets = stores
    ensure_dev_key(store, secrets, settings)

    rotated = rotate_webhook_secret(secrets, "dev", timedelta(hours=1))
    ensure_dev_key(store, secrets, settings)

    assert private_text(settings.dev_webhook_secret_path) == rotated.secret
