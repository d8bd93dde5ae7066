"""The error tree drawn in imageeditor/core/errors.py is the tree the classes form."""

from __future__ import annotations

import re

import imageeditor.core.errors
from imageeditor.core.errors import ERRORS_BY_CODE, ImageEditorError, RetryableError


def drawn_tree() -> dict[str, str]:
    """Each class in the module docstring's drawing, with the class drawn above it (the
    drawing's lines are those that start with a class name or a branch)."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (imageeditor.core.errors.__doc__ or "").splitlines():
        found = re.match(r"^\s*(?:[│├└─]\s*)*(ImageEditorError|[A-Z]\w+)", line)
        if not found or not (found.group(1) == "ImageEditorError" or "─ " in line):
            continue
        depth, name = found.start(1), found.group(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def real_tree() -> dict[str, str]:
    parents: dict[str, str] = {}
    pending: list[type[ImageEditorError]] = [ImageEditorError]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__ == "imageeditor.core.errors":
                parents[sub.__name__] = cls.__name__
                pending.append(sub)
    return parents


def test_the_drawing_is_the_class_tree() -> None:
    assert drawn_tree() == real_tree()
    assert drawn_tree()["Unavailable"] == "RetryableError"


def test_every_class_with_a_code_is_mapped_and_the_retryable_class_has_none() -> None:
    assert set(ERRORS_BY_CODE.values()) == {
        getattr(imageeditor.core.errors, name) for name in real_tree() if name != "RetryableError"
    }
    assert RetryableError not in ERRORS_BY_CODE.values()
