"""How every process of the service logs: one place, so the server, the workers and the
embedded worker's pipeline processes write alike."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr at `level`, one line a record."""
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
