"""The work queues and which one a task goes to: the broker's routing in production mode, and
the `queue` label of the task metrics in both modes."""

from __future__ import annotations

from imageeditor.core.spec import RemoveBackground, TaskSpec

EDITS_QUEUE = "edits"  # Pillow work: cheap per task, scales with cores
MODELS_QUEUE = "models"  # rembg: ~600 MB per process, warmed up at start
CALLBACKS_QUEUE = "callbacks"  # HTTP callbacks: I/O bound, never behind image work
QUEUES = (EDITS_QUEUE, MODELS_QUEUE, CALLBACKS_QUEUE)


def queue_for(spec: TaskSpec) -> str:
    """Routing by operation: background removal needs the model workers."""
    if any(isinstance(op, RemoveBackground) for op in spec.operations):
        return MODELS_QUEUE
    return EDITS_QUEUE
