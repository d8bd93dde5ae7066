"""Background removal with rembg: one model session per model per process, made once, reused.

How it uses rembg (2.0.86, pinned), and why:

- Never `rembg.remove` without a session (it would load bria-rmbg, ~1 GB, downloading it on
  every call), and never let rembg download: a session is built from the provisioned file in
  Settings.models_dir, found first (a missing one is FailedPrecondition MODEL_NOT_INSTALLED,
  naming `imageeditor models fetch`). The path goes to rembg explicitly: its session class
  is subclassed with `download_models` returning that path, so rembg has no code path left
  that reaches the network, and no process-wide U2NET_HOME needs setting.
- `import rembg` runs rembg/__init__, which imports rembg.bg → pymatting → numba: ~2 s with
  a warm numba cache, 46-72 s and ~500 MB with a cold one. Importing only
  `rembg.sessions.u2netp` does not avoid that, because Python runs a package's __init__
  before any of its submodules. So `_rembg_sessions` registers the rembg package without
  running its __init__ (a module made from rembg's own spec, whose first access to a missing
  attribute such as `remove` runs the real __init__ into it) and imports rembg.sessions
  alone: 0.7 s, no numba. Only alpha matting imports rembg.bg, and numba with it; `make`
  (`imageeditor models warm`) warms numba's cache so that first use costs ~2 s, not a minute.
  A worker is ready 1.6-2.1 s after `imageeditor serve` starts, with a cold numba cache too.
- onnxruntime: intra-op threads from Settings.onnx_threads (0: onnxruntime's default, one
  per core) and the CPU memory arena from Settings.onnx_memory_arena, ON by default. In one
  quiet `make bench` run (u2netp, 512x512 photos): arena on 160 ms per image, peak RSS
  584 MB, on a par with a bare rembg session (164 ms, 724 MB); arena off 263-272 ms, 388 MB.
  Background removal is the slow step of a job and the arena makes it 1.7x faster, which is
  worth ~200 MB per worker process; IMAGEEDITOR_ONNX_MEMORY_ARENA=false trades it back.
- Threads: onnxruntime sessions are safe to run() from several threads; creating one is not
  guarded by rembg, so creation happens under a lock and each model is loaded once.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import threading
import time
from types import ModuleType
from typing import Any

from PIL import Image, ImageChops

from imageeditor.core.errors import FailedPrecondition, Internal, InvalidArgument
from imageeditor.core.rembg_models import KNOWN_MODELS, find_model_file
from imageeditor.core.settings import Settings
from imageeditor.core.spec import RemoveBackground

log = logging.getLogger(__name__)

# rembg's own alpha-matting defaults (foreground / background thresholds, erosion size).
MATTING_FOREGROUND = 240
MATTING_BACKGROUND = 10
MATTING_ERODE = 10
MATTING_MAX_PIXELS = 1_000_000

_REMBG_IMPORT = threading.RLock()  # reentrant: rembg's __init__ may run while it is held


class BackgroundRemover:
    """The `remove_background` operation, holding one rembg session per model."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def apply(self, image: Image.Image, op: RemoveBackground) -> Image.Image:
        """`image` with the model's mask as alpha (RGBA, or LA for a gray image), or laid on
        op.background (RGB when that colour is opaque). Where alpha is 0 the colour is 0
        too: what was removed cannot be recovered from the file (and it compresses)."""
        session = self.session(op.model or self._settings.rembg_model)
        mask: Image.Image = session.predict(image)[0]  # an L image; rembg reads it as RGB
        if "A" in image.getbands():  # what was transparent stays transparent
            mask = ImageChops.multiply(mask, image.getchannel("A"))
        if op.alpha_matting:
            cutout = _matte(image.convert("RGB"), mask)
        else:
            cutout = image.convert("LA" if image.mode in ("L", "LA") else "RGBA")
            cutout.putalpha(mask)
        if op.background is not None:
            cutout = _on_background(cutout, op.background)
        cutout = clear_transparent(cutout)
        cutout.info = dict(image.info)
        return cutout

    def session(self, model: str) -> Any:
        """The session of `model`, created on first use and shared by every thread after."""
        session = self._sessions.get(model)
        if session is None:
            with self._lock:
                session = self._sessions.get(model)
                if session is None:
                    session = self._sessions[model] = self._create_session(model)
        return session

    def warm_up(self) -> None:
        """Load the default model and run one small inference (first runs are slower), so the
        first task does not pay for it. Logs, never raises: it runs on a background thread."""
        started = time.monotonic()
        model = self._settings.rembg_model
        try:
            self.apply(Image.new("RGB", (64, 64), "white"), RemoveBackground(model=model))
        except FailedPrecondition as error:
            log.warning("background removal is unavailable: %s", error.message)
            return
        except Exception:
            log.exception("background removal warm-up failed")
            return
        log.info("background removal ready (%s) in %.2f s", model, time.monotonic() - started)

    def _create_session(self, model: str) -> Any:
        models_dir = self._settings.models_dir
        if model not in KNOWN_MODELS:
            raise InvalidArgument(
                f"unknown background-removal model {model!r}; known: {', '.join(KNOWN_MODELS)}",
                field_violations={"remove_background.model": "unknown model"},
                reason="MODEL_UNKNOWN",
            )
        path = find_model_file(models_dir, model)
        if path is None:
            raise FailedPrecondition(
                f"model {model!r} is not installed in {models_dir}: run `imageeditor models "
                f"fetch` (u2netp), `imageeditor models quantize` (u2netp-int8) or place "
                f"{model}.onnx there (IMAGEEDITOR_MODELS_DIR)",
                reason="MODEL_NOT_INSTALLED",
            )
        started = time.monotonic()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self._settings.onnx_threads > 0:
            options.intra_op_num_threads = self._settings.onnx_threads
        options.enable_cpu_mem_arena = self._settings.onnx_memory_arena
        options.log_severity_level = 3  # errors only
        rembg_class = _rembg_sessions().sessions[KNOWN_MODELS[model].session_name]
        installed = type(
            f"Installed{rembg_class.__name__}",
            (rembg_class,),
            {"download_models": classmethod(lambda cls, *args, **kwargs: str(path))},
        )
        session = installed(model, options)
        log.info("loaded %s from %s in %.2f s", model, path, time.monotonic() - started)
        return session


def _rembg_sessions() -> ModuleType:
    """rembg.sessions, imported without running rembg/__init__ (see the module docstring)."""
    with _REMBG_IMPORT:
        if "rembg" not in sys.modules:
            spec = importlib.util.find_spec("rembg")
            if spec is None or spec.loader is None:
                raise Internal("rembg is not installed: pip install 'imageeditor[worker]'")
            package = importlib.util.module_from_spec(spec)
            loader = spec.loader

            def run_init(name: str) -> Any:
                with _REMBG_IMPORT:
                    if package.__dict__.pop("__getattr__", None) is not None:
                        loader.exec_module(package)
                return getattr(package, name)

            package.__dict__["__getattr__"] = run_init
            sys.modules["rembg"] = package
        import rembg.sessions

    sessions: ModuleType = rembg.sessions
    return sessions


def _matte(rgb: Image.Image, mask: Image.Image) -> Image.Image:
    """rembg's alpha matting (pymatting's closed-form solver): an RGBA cut-out whose edge
    alpha is estimated rather than taken from the mask.

    The solver's cost grows fast with size (measured here: 512x512 1.8 s; 2048x2048 27 s and
    2.5 GB RSS), so above MATTING_MAX_PIXELS it runs on a reduced copy and its alpha is
    scaled back up onto the full-size image.
    """
    from rembg.bg import alpha_matting_cutout

    scale = min(1.0, math.sqrt(MATTING_MAX_PIXELS / (rgb.width * rgb.height)))
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small_rgb, small_mask = (rgb, mask) if scale == 1.0 else (rgb.resize(size), mask.resize(size))
    try:
        cutout: Image.Image = alpha_matting_cutout(
            small_rgb, small_mask, MATTING_FOREGROUND, MATTING_BACKGROUND, MATTING_ERODE
        )
    except ValueError:  # the solver found no unknown region to solve: keep the mask
        cutout = small_rgb.copy()
        cutout.putalpha(small_mask)
    if scale == 1.0:
        return cutout
    full = rgb.copy()
    full.putalpha(cutout.getchannel("A").resize(rgb.size, Image.Resampling.BILINEAR))
    return full


def _on_background(cutout: Image.Image, colour: tuple[int, int, int, int]) -> Image.Image:
    canvas = Image.new("RGBA", cutout.size, colour)
    canvas.alpha_composite(cutout.convert("RGBA"))
    return canvas.convert("RGB") if colour[3] == 255 else canvas


def clear_transparent(image: Image.Image) -> Image.Image:
    """`image` with every fully transparent pixel set to 0 in all its bands (LA, RGBA);
    partly transparent pixels keep their colour (straight alpha), other modes pass."""
    if image.mode not in ("LA", "RGBA"):
        return image
    alpha = image.getchannel("A")
    lowest, _ = alpha.getextrema()
    if isinstance(lowest, int) and lowest > 0:  # nothing fully transparent
        return image
    visible = alpha.point(lambda value: 255 if value else 0)
    return Image.composite(image, Image.new(image.mode, image.size, 0), visible)
