"""The Task's enums as Python IntEnums, so a caller reads names instead of numbers:
`TaskState(task.state) is TaskState.SUCCEEDED`, `Stage(task.stage).name == "EDIT"`. Their
members are the protobuf enums' values without the prefix (tests/unit/test_sdk_requests.py
checks that they match the generated code)."""

from __future__ import annotations

import enum

from imageeditor.sdk.watching import TERMINAL_STATES
from imageeditor.v1 import operations_pb2, task_pb2


class TaskState(enum.IntEnum):
    UNSPECIFIED = task_pb2.TASK_STATE_UNSPECIFIED
    QUEUED = task_pb2.TASK_STATE_QUEUED
    RUNNING = task_pb2.TASK_STATE_RUNNING
    SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
    FAILED = task_pb2.TASK_STATE_FAILED
    CANCELLED = task_pb2.TASK_STATE_CANCELLED

    @property
    def terminal(self) -> bool:
        return self.value in TERMINAL_STATES


class Stage(enum.IntEnum):
    UNSPECIFIED = task_pb2.STAGE_UNSPECIFIED
    FETCH = task_pb2.STAGE_FETCH
    VALIDATE = task_pb2.STAGE_VALIDATE
    EDIT = task_pb2.STAGE_EDIT
    STYLE = task_pb2.STAGE_STYLE
    ENCODE = task_pb2.STAGE_ENCODE
    STORE = task_pb2.STAGE_STORE
    REMOVE_BACKGROUND = task_pb2.STAGE_REMOVE_BACKGROUND


class ImageFormat(enum.IntEnum):
    UNSPECIFIED = operations_pb2.IMAGE_FORMAT_UNSPECIFIED
    PNG = operations_pb2.IMAGE_FORMAT_PNG
    WEBP = operations_pb2.IMAGE_FORMAT_WEBP
    JPEG = operations_pb2.IMAGE_FORMAT_JPEG
    AVIF = operations_pb2.IMAGE_FORMAT_AVIF


class CallbackState(enum.IntEnum):
    UNSPECIFIED = task_pb2.CALLBACK_STATE_UNSPECIFIED
    PENDING = task_pb2.CALLBACK_STATE_PENDING
    DELIVERED = task_pb2.CALLBACK_STATE_DELIVERED
    FAILED = task_pb2.CALLBACK_STATE_FAILED
