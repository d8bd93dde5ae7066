from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_AVIF: _ClassVar[ImageFormat]

class ResizeFit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESIZE_FIT_UNSPECIFIED: _ClassVar[ResizeFit]
    RESIZE_FIT_CONTAIN: _ClassVar[ResizeFit]
    RESIZE_FIT_COVER: _ClassVar[ResizeFit]
    RESIZE_FIT_FILL: _ClassVar[ResizeFit]
    RESIZE_FIT_INSIDE: _ClassVar[ResizeFit]

class Gravity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRAVITY_UNSPECIFIED: _ClassVar[Gravity]
    GRAVITY_CENTER: _ClassVar[Gravity]
    GRAVITY_NORTH: _ClassVar[Gravity]
    GRAVITY_NORTH_EAST: _ClassVar[Gravity]
    GRAVITY_EAST: _ClassVar[Gravity]
    GRAVITY_SOUTH_EAST: _ClassVar[Gravity]
    GRAVITY_SOUTH: _ClassVar[Gravity]
    GRAVITY_SOUTH_WEST: _ClassVar[Gravity]
    GRAVITY_WEST: _ClassVar[Gravity]
    GRAVITY_NORTH_WEST: _ClassVar[Gravity]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_AVIF: ImageFormat
RESIZE_FIT_UNSPECIFIED: ResizeFit
RESIZE_FIT_CONTAIN: ResizeFit
RESIZE_FIT_COVER: ResizeFit
RESIZE_FIT_FILL: ResizeFit
RESIZE_FIT_INSIDE: ResizeFit
GRAVITY_UNSPECIFIED: Gravity
GRAVITY_CENTER: Gravity
GRAVITY_NORTH: Gravity
GRAVITY_NORTH_EAST: Gravity
GRAVITY_EAST: Gravity
GRAVITY_SOUTH_EAST: Gravity
GRAVITY_SOUTH: Gravity
GRAVITY_SOUTH_WEST: Gravity
GRAVITY_WEST: Gravity
GRAVITY_NORTH_WEST: Gravity

class Color(_message.Message):
    __slots__ = ("red", "green", "blue", "alpha")
    RED_FIELD_NUMBER: _ClassVar[int]
    GREEN_FIELD_NUMBER: _ClassVar[int]
    BLUE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    red: int
    green: int
    blue: int
    alpha: int
    def __init__(self, red: _Optional[int] = ..., green: _Optional[int] = ..., blue: _Optional[int] = ..., alpha: _Optional[int] = ...) -> None: ...

class Resize(_message.Message):
    __slots__ = ("width", "height", "fit", "allow_upscale")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UPSCALE_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    fit: ResizeFit
    allow_upscale: bool
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., fit: _Optional[_Union[ResizeFit, str]] = ..., allow_upscale: _Optional[bool] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("left", "top", "width", "height")
    LEFT_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    left: int
    top: int
    width: int
    height: int
    def __init__(self, left: _Optional[int] = ..., top: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class GravitySize(_message.Message):
    __slots__ = ("width", "height", "gravity")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    GRAVITY_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    gravity: Gravity
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., gravity: _Optional[_Union[Gravity, str]] = ...) -> None: ...

class Crop(_message.Message):
    __slots__ = ("box", "size")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    box: Box
    size: GravitySize
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., size: _Optional[_Union[GravitySize, _Mapping]] = ...) -> None: ...

class Rotate(_message.Message):
    __slots__ = ("degrees", "expand", "fill")
    DEGREES_FIELD_NUMBER: _ClassVar[int]
    EXPAND_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    degrees: float
    expand: bool
    fill: Color
    def __init__(self, degrees: _Optional[float] = ..., expand: _Optional[bool] = ..., fill: _Optional[_Union[Color, _Mapping]] = ...) -> None: ...

class Flip(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Flop(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Grayscale(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Blur(_message.Message):
    __slots__ = ("radius",)
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    radius: float
    def __init__(self, radius: _Optional[float] = ...) -> None: ...

class Sharpen(_message.Message):
    __slots__ = ("radius", "percent", "threshold")
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    radius: float
    percent: int
    threshold: int
    def __init__(self, radius: _Optional[float] = ..., percent: _Optional[int] = ..., threshold: _Optional[int] = ...) -> None: ...

class Adjust(_message.Message):
    __slots__ = ("brightness", "contrast", "saturation")
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    SATURATION_FIELD_NUMBER: _ClassVar[int]
    brightness: float
    contrast: float
    saturation: float
    def __init__(self, brightness: _Optional[float] = ..., contrast: _Optional[float] = ..., saturation: _Optional[float] = ...) -> None: ...

class RemoveBackground(_message.Message):
    __slots__ = ("model", "alpha_matting", "background")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ALPHA_MATTING_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    model: str
    alpha_matting: bool
    background: Color
    def __init__(self, model: _Optional[str] = ..., alpha_matting: _Optional[bool] = ..., background: _Optional[_Union[Color, _Mapping]] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("resize", "grayscale", "crop", "rotate", "flip", "flop", "blur", "sharpen", "adjust", "remove_background")
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    GRAYSCALE_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    ROTATE_FIELD_NUMBER: _ClassVar[int]
    FLIP_FIELD_NUMBER: _ClassVar[int]
    FLOP_FIELD_NUMBER: _ClassVar[int]
    BLUR_FIELD_NUMBER: _ClassVar[int]
    SHARPEN_FIELD_NUMBER: _ClassVar[int]
    ADJUST_FIELD_NUMBER: _ClassVar[int]
    REMOVE_BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    resize: Resize
    grayscale: Grayscale
    crop: Crop
    rotate: Rotate
    flip: Flip
    flop: Flop
    blur: Blur
    sharpen: Sharpen
    adjust: Adjust
    remove_background: RemoveBackground
    def __init__(self, resize: _Optional[_Union[Resize, _Mapping]] = ..., grayscale: _Optional[_Union[Grayscale, _Mapping]] = ..., crop: _Optional[_Union[Crop, _Mapping]] = ..., rotate: _Optional[_Union[Rotate, _Mapping]] = ..., flip: _Optional[_Union[Flip, _Mapping]] = ..., flop: _Optional[_Union[Flop, _Mapping]] = ..., blur: _Optional[_Union[Blur, _Mapping]] = ..., sharpen: _Optional[_Union[Sharpen, _Mapping]] = ..., adjust: _Optional[_Union[Adjust, _Mapping]] = ..., remove_background: _Optional[_Union[RemoveBackground, _Mapping]] = ...) -> None: ...

class OutputOptions(_message.Message):
    __slots__ = ("format", "quality", "lossless", "effort", "keep_metadata")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LOSSLESS_FIELD_NUMBER: _ClassVar[int]
    EFFORT_FIELD_NUMBER: _ClassVar[int]
    KEEP_METADATA_FIELD_NUMBER: _ClassVar[int]
    format: ImageFormat
    quality: int
    lossless: bool
    effort: int
    keep_metadata: bool
    def __init__(self, format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., lossless: _Optional[bool] = ..., effort: _Optional[int] = ..., keep_metadata: _Optional[bool] = ...) -> None: ...
