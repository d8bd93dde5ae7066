"""imageeditor's clients: the Python SDK (`clients.sdk`) and the `imageeditor` CLI.

The SDK's public names are re-exported here, so `from clients import Client` works.
"""

from clients.sdk import *  # noqa: F403
from clients.sdk import __all__ as __all__
