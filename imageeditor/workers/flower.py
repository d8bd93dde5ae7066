"""`imageeditor flower`: Celery's Flower over the service's Celery app, behind basic auth.

Flower follows the workers' task events (on by default: IMAGEEDITOR_TASK_EVENTS) and lists
each run under its Celery task id, which is our task id, so a Flower row leads to the task
(`imageeditor status ID`). It also inspects the workers and the broker's queues.
Equivalent: `celery -A imageeditor.workers.celery_main flower --basic-auth=user:password`.
"""

from __future__ import annotations

import os

from imageeditor.core.adapters.celery.config import create_celery
from imageeditor.core.settings import Settings, bad_setting

AUTH_VARIABLE = "IMAGEEDITOR_FLOWER_BASIC_AUTH"


def flower_argv(settings: Settings) -> list[str]:
    """The `celery flower` arguments (the credentials go by environment: not in `ps`)."""
    user, colon, password = settings.flower_basic_auth.partition(":")
    if not (user and colon and password):
        raise bad_setting(AUTH_VARIABLE, "set user:password; Flower shows every task's arguments")
    return [
        "flower",
        f"--address={settings.ops_host}",
        f"--port={settings.flower_port}",
        # Bounded memory: Flower keeps this many tasks' events, the oldest dropped first.
        "--max_tasks=10000",
    ]


def run(settings: Settings) -> None:
    """Serve Flower until SIGINT or SIGTERM."""
    argv = flower_argv(settings)
    os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth
    create_celery(settings).start(argv=argv)
