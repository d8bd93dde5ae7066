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
- Mixed precision: what stays float is chosen by measurement (mask IoU against fp32 on the
  photos below, one part at a time):
  - the deep stages, every node whose output is 40x40 or smaller: 85 of the 119
    convolutions but 2 % of the work; their errors reach every pixel of the mask (quantized,
    they cost accuracy and gain nothing: the model is faster with them float, fewer
    quantize/dequantize pairs);
  - Conv_0, the first convolution, so the image itself is not quantized (quantized, `coins`
    and `immunohistochemistry` fall to IoU 0.80 and 0.28);
  - Conv_787 (a decoder convolution at 160x160: quantized alone it takes the mean IoU of six
    photos from 0.97 to 0.56), and Conv_8, Conv_136, Conv_141 (encoder convolutions at
    160x160 that each moved `chelsea` or `rocket` below 0.97);
  - the head: the six one-channel side outputs, their upsampling and the fusing convolution,
    whose few values decide which pixels fall on either side of the mask's threshold.
- The model carries the recipe's version (RECIPE) in its metadata: `models quantize` makes a
  model made by an older recipe again (a stale file once hid a recipe that had got worse).

Measured on this machine by bench/run.py (per image through rembg's session, 2 threads): 1.3-1.6x
faster than fp32 (median 1.45x; the model call alone ~1.55x); mask IoU against fp32 ≥ 0.97 on
13 of the 15 photos with a subject (mean 0.986), `rocket` 0.966 and `immunohistochemistry`
0.969 — where fp32 itself moves as much (IoU 0.969 and 0.711) when the photo goes through a
JPEG q95 round trip. What was tried and dropped is in the README (Background removal).
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
RECIPE = "2"
"""Written into the model's metadata: a model made by another recipe is made again."""
FLOAT_NODES = ("Conv_0", "Conv_8", "Conv_136", "Conv_141", "Conv_787")  # with their Relus
DEEP = 40
"""Nodes whose output is DEEP x DEEP or smaller stay float (and the head: head_nodes)."""
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
            False,  # 8-bit weights: 7-bit (against AVX2's u8 x s8 saturation) was no better
            QuantType.QInt8,
            QuantType.QUInt8,
            ranges,
            [],
            float_nodes(model),
            list(QUANTIZED_OPS),
            {"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        quantizer.quantize_model()
        onnx.helper.set_model_props(quantizer.model.model, {"imageeditor.recipe": RECIPE})
        out = work / "int8.onnx"
        quantizer.model.save_model_to_file(str(out))
        target = source.parent / f"{TARGET}.onnx"
        write_atomically(target, out.read_bytes())
    progress(1.0, f"{TARGET}: wrote {target} in {time.monotonic() - started:.0f} s")
    return target


def is_current(path: Path) -> bool:
    """Whether the int8 model at `path` was made by this recipe (else it is made again)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    return props.get("imageeditor.recipe") == RECIPE


def float_nodes(model: Any) -> list[str]:
    """The nodes that stay float in `model` (shape-inferred): FLOAT_NODES with the Relu each
    feeds, the deep stages and the head."""
    graph = model.graph
    named = set(FLOAT_NODES)
    chosen = {n.name for n in graph.node if n.name in named}
    outputs = {n.output[0] for n in graph.node if n.name in named}
    chosen |= {n.name for n in graph.node if n.op_type == "Relu" and n.input[0] in outputs}
    sizes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
    deep = {
        n.name
        for n in graph.node
        if len(sizes.get(n.output[0], [])) == 4 and 0 < sizes[n.output[0]][2] <= DEEP
    }
    return sorted(chosen | deep | set(head_nodes(model)))


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


def mask_iou(a: Any, b: Any) -> float:
    """IoU of two masks (L images or arrays of 0-255) thresholded at half, as the int8 model
    is judged against fp32."""
    import numpy as np

    x, y = np.asarray(a) > 127, np.asarray(b) > 127
    union = np.logical_or(x, y).sum()
    return 1.0 if union == 0 else float(np.logical_and(x, y).sum() / union)


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
