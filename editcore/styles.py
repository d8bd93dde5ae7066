"""The named styles the built-in `presets` style backend serves.

Pure data, so the server can refuse an unknown style at submit time without importing the
worker; the worker (workers/styles.py) implements each name.
"""

from __future__ import annotations

PRESET_STYLES: tuple[str, ...] = ("grayscale", "sepia", "posterize", "vivid", "sketch")


def normalize_prompt(prompt: str) -> str:
    """A style prompt in the form it is compared and stored in: trimmed and lowercase."""
    return prompt.strip().lower()
