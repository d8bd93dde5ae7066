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

class ResizeFit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESIZE_FIT_UNSPECIFIED: _ClassVar[ResizeFit]
    RESIZE_FIT_CONTAIN: _ClassVar[ResizeFit]
    RESIZE_FIT_COVER: _ClassVar[ResizeFit]
    RESIZE_FIT_FILL: _ClassVar[ResizeFit]
    RESIZE_FIT_INSIDE: _ClassVar[ResizeFit]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
RESIZE_FIT_UNSPECIFIED: ResizeFit
RESIZE_FIT_CONTAIN: ResizeFit
RESIZE_FIT_COVER: ResizeFit
RESIZE_FIT_FILL: ResizeFit
RESIZE_FIT_INSIDE: ResizeFit

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

class Grayscale(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Operation(_message.Message):
    __slots__ = ("resize", "grayscale")
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    GRAYSCALE_FIELD_NUMBER: _ClassVar[int]
    resize: Resize
    grayscale: Grayscale
    def __init__(self, resize: _Optional[_Union[Resize, _Mapping]] = ..., grayscale: _Optional[_Union[Grayscale, _Mapping]] = ...) -> None: ...

class OutputOptions(_message.Message):
    __slots__ = ("format", "quality", "lossless")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LOSSLESS_FIELD_NUMBER: _ClassVar[int]
    format: ImageFormat
    quality: int
    lossless: bool
    def __init__(self, format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., lossless: _Optional[bool] = ...) -> None: ...
