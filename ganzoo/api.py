"""The public, torch-side API for plugin authors.

Everything a plugin may import lives here or in ``ganzoo`` itself; if a plugin needs something that
is not exported, the public API is missing a piece: add it here rather than reaching into a private
module.
"""

from __future__ import annotations

from . import hookimpl
from .data.base import Batch, DataInfo, DataRequest, Dataset, as_float
from .data.cache import Cached, cache_dir, cached_array
from .data.files import ImageSet, load_image_files
from .data.images import (
    IMAGE_EXTS,
    RESIZE_MODE,
    decode_images,
    default_workers,
    list_images,
    read_image,
    square_resize_image,
    warn,
)
from .data.public import (
    convert_channels,
    dataset_from_arrays,
    image_info,
    images_from_array,
    square_resize,
)
from .engine.context import Preview, Step, StepContext, set_requires_grad
from .errors import GanzooError
from .nn import conv_plan, down_stack, init_weights, stage_widths, up_stack
from .specs import (
    ArchitectureSpec,
    DatasetSpec,
    ExportSpec,
    HParam,
    LossSpec,
    OptimizerSpec,
    PenaltySpec,
)

__all__ = [
    "hookimpl",
    "ArchitectureSpec",
    "Batch",
    "Cached",
    "IMAGE_EXTS",
    "ImageSet",
    "RESIZE_MODE",
    "as_float",
    "cache_dir",
    "cached_array",
    "decode_images",
    "default_workers",
    "list_images",
    "load_image_files",
    "read_image",
    "warn",
    "DataInfo",
    "DataRequest",
    "Dataset",
    "DatasetSpec",
    "ExportSpec",
    "GanzooError",
    "HParam",
    "LossSpec",
    "OptimizerSpec",
    "PenaltySpec",
    "Preview",
    "Step",
    "StepContext",
    "conv_plan",
    "convert_channels",
    "dataset_from_arrays",
    "image_info",
    "images_from_array",
    "square_resize",
    "square_resize_image",
    "down_stack",
    "init_weights",
    "stage_widths",
    "up_stack",
    "set_requires_grad",
]
