"""`celery -A imageeditor.workers.celery_main worker -Q edits,models`: the worker app, from the
environment.

Celery's command line imports a module and looks for an `app` attribute, so this module
builds one when imported — the one place where importing builds something, and the reason
it is a module of its own that nothing else imports. The trade-off: the settings are read
once, from the environment, at import (as any composition root reads them). Building the
app connects to nothing; each worker process connects after the fork
(imageeditor.workers.celery_app).
`imageeditor worker` builds its app in imageeditor.workers.main instead and does not import this.
"""

from __future__ import annotations

from imageeditor.core.settings import Settings
from imageeditor.workers.celery_app import create_celery_app

app = create_celery_app(Settings.from_env())
