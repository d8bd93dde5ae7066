"""The int8 u2netp: made at install time from the provisioned fp32 model, never downloaded.

`imageeditor models quantize` (run by `make models`) writes `u2netp-int8.onnx` beside
`u2netp.onnx` with onnxruntime.quantization:

- The model is converted to opset 13 (per-channel QDQ needs it) and pre-processed
  (quant_pre_process: shape inference, constant folding).
- Calibration: min/max of every activation over 208 images made here, offline, from
  scikit-image's bundled photos (rembg depends on scikit-image): each whole, and seven random
  crops of each (50-95 %, flipped half the time, brightness and contrast ±30 %), plus 40
  faces of its LFW subset — seeded, so every install makes the same model.
- Static QDQ, int8 weights per channel (symmetric), uint8 activations (asymmetric), on Conv,
  Relu, MaxPool, Concat and Resize, so the tensors stay int8 from one convolution to the
  next (quantizing the convolutions alone leaves a quantize/dequantize pair around each, and
  the model is barely faster: 1.0-1.15x here).
- Mixed precision: two parts stay float. Conv_787 (a 64-channel decoder convolution at
  160x160): quantized alone it takes the mean mask IoU of six photos from 0.97 to 0.56. And
  the head — the six one-channel side outputs, their upsampling and the fusing convolution —
  whose few values decide which pixels fall on either side of the mask's threshold.

Measured on this machine (2 threads, model call alone, 13 photos; bench/run.py prints it
again): 1.5-1.7x faster than fp32; mask IoU against fp32 ≥ 0.97 on 11 of the 12 photos with a
subject (mean 0.985), 0.957 on `rocket` (whose mask covers 2 % of the image). What was tried
and dropped is in the README (Background removal).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from imageeditor.core.errors import FailedPrecondition
from imageeditor.core.rembg_models import KNOWN_MODELS, file_md5, find_model_file
from imageeditor.workers.model_files import write_atomically

Progress = Callable[[float, str], None]
"""Told the share of the work done (0-1) and what is happening."""

SOURCE, TARGET = "u2netp", "u2netp-int8"
FLOAT_NODES = ("Conv_787",)  # and the head (head_nodes)
QUANTIZED_OPS = ("Conv", "Relu", "MaxPool", "Concat", "Resize")
SIZE = 320
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # rembg's u2netp normalisation
CALIBRATION_PHOTOS = (
    "astronaut", "camera", "chelsea", "clock", "coffee", "coins", "rocket", "moon", "retina",
    "cell", "immunohistochemistry", "motorcycle_left", "motorcycle_right", "brick", "grass",
    "gravel", "colorwheel", "logo", "page", "text", "horse",
)  # fmt: skip
# The photos of things among them (the rest are textures, drawings and text): what the int8
# model's masks are compared with fp32's on (tests/integration/test_int8_model.py, bench/run.py).
PHOTOS = CALIBRATION_PHOTOS[:13]
CROPS_PER_PHOTO = 7
FACES = 40
SEED = 0


def _silent(_: float, __: str) -> None:
    pass


def quantize_u2netp(models_dir: Path, progress: Progress = _silent) -> Path:
    """Make `u2netp-int8.onnx` in `models_dir` from the installed u2netp (about two minutes);
    returns its path. FailedPrecondition when u2netp is missing or not the known file."""
    source = find_model_file(models_dir, SOURCE)
    if source is None or file_md5(source) != KNOWN_MODELS[SOURCE].md5:
        raise FailedPrecondition(
            f"{SOURCE} is not installed (or not the known file) in {models_dir}: run "
            "`imageeditor models fetch` first",
            reason="MODEL_NOT_INSTALLED",
        )
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantType
    from onnxruntime.quantization.calibrate import create_calibrator
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
    from onnxruntime.quantization.shape_inference import quant_pre_process

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imageeditor-quantize-") as folder:
        work = Path(folder)
        progress(0.0, f"{TARGET}: converting {source.name} to opset 13 and pre-processing it")
        onnx.save(version_converter.convert_version(onnx.load(source), 13), work / "13.onnx")
        prepared = work / "prepared.onnx"
        quant_pre_process(str(work / "13.onnx"), str(prepared), skip_symbolic_shape=False)
        samples = calibration_inputs()
        progress(0.0, f"{TARGET}: calibrating on {len(samples)} images (scikit-image's photos)")
        calibrator = create_calibrator(
            str(prepared),
            None,
            augmented_model_path=str(work / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"symmetric": False},
        )
        name = calibrator.infer_session.get_inputs()[0].name
        for start in range(0, len(samples), 16):  # in chunks: every activation is kept
            calibrator.collect_data(_Inputs(name, samples[start : start + 16]))
            done = min(start + 16, len(samples))
            progress(done / len(samples), f"{TARGET}: calibrated {done}/{len(samples)}")
        ranges = calibrator.compute_data()
        model = load_model_with_shape_infer(prepared)
        quantizer = QDQQuantizer(
            model,
            True,  # per channel
            False,  # no reduced range: the CPU has VNNI or AVX2 for int8 x int8
            QuantType.QInt8,
            QuantType.QUInt8,
            ranges,
            [],
            [*FLOAT_NODES, *head_nodes(model)],
            list(QUANTIZED_OPS),
            {"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        quantizer.quantize_model()
        out = work / "int8.onnx"
        quantizer.model.save_model_to_file(str(out))
        target = source.parent / f"{TARGET}.onnx"
        write_atomically(target, out.read_bytes())
    progress(1.0, f"{TARGET}: wrote {target} in {time.monotonic() - started:.0f} s")
    return target


def head_nodes(model: Any) -> list[str]:
    """The nodes from the one-channel side-output convolutions to the final sigmoids (not
    included): the side outputs, their upsampling, the concatenation and the fusing conv."""
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    side = [
        n.name
        for n in graph.node
        if n.op_type == "Conv" and n.input[1] in weights and weights[n.input[1]].dims[0] == 1
    ]
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes = {n.name: n for n in graph.node}
    head, todo = set(side), list(side)
    while todo:
        for output in nodes[todo.pop()].output:
            for consumer in consumers.get(output, []):
                if consumer.name not in head and consumer.op_type != "Sigmoid":
                    head.add(consumer.name)
                    todo.append(consumer.name)
    return sorted(head)


def calibration_inputs() -> list[Any]:
    """The calibration images as u2netp inputs (1x3x320x320 float32), in a fixed order."""
    import numpy as np
    from PIL import Image, ImageEnhance
    from skimage import data

    rng = random.Random(SEED)
    inputs = []
    for name in CALIBRATION_PHOTOS:
        image = bundled_photo(name)
        inputs.append(to_input(image))
        for _ in range(CROPS_PER_PHOTO):
            w, h = image.size
            share = rng.uniform(0.5, 0.95)
            cw, ch = int(w * share), int(h * share)
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            crop = image.crop((x, y, x + cw, y + ch))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
            crop = ImageEnhance.Contrast(crop).enhance(rng.uniform(0.7, 1.3))
            inputs.append(to_input(crop))
    lfw_subset: Callable[[], Any] = data.lfw_subset  # scikit-image is untyped
    faces = lfw_subset()
    for i in range(FACES):
        face = Image.fromarray((faces[i * 5] * 255).astype(np.uint8)).convert("RGB")
        inputs.append(to_input(face.resize((200, 200))))
    return inputs


def to_input(image: Any) -> Any:
    """`image` as rembg feeds u2netp: 320x320 (Lanczos), scaled by its maximum, normalised."""
    import numpy as np
    from PIL import Image

    resized = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    pixels: Any = np.asarray(resized, np.float32)
    scaled = pixels / max(float(pixels.max()), 1e-6)
    normalised = (scaled - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return normalised.transpose(2, 0, 1)[None].astype(np.float32)


def bundled_photo(name: str) -> Any:
    """One of scikit-image's bundled photos, as RGB (no download: these ship in the wheel)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    if name.startswith("motorcycle"):
        stereo_motorcycle: Callable[[], Any] = data.stereo_motorcycle  # scikit-image is untyped
        left, right, _ = stereo_motorcycle()
        array = left if name.endswith("left") else right
    else:
        array = getattr(data, name)()
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array).convert("RGB")


class _Inputs:
    """A CalibrationDataReader over prepared inputs."""

    def __init__(self, name: str, inputs: list[Any]) -> None:
        self._feeds: Iterator[dict[str, Any]] = iter([{name: x} for x in inputs])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)
