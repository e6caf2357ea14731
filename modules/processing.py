"""A1111's `modules.processing` for extensions: the `p` classes, `Processed` and `process_images`.

A thin facade over `modules.plugins`; core code never imports this module.
"""

from __future__ import annotations

from modules.plugins.processing_compat import (
    Processed,
    StableDiffusionProcessing,
    StableDiffusionProcessingImg2Img,
    StableDiffusionProcessingTxt2Img,
    create_infotext,
    fix_seed,
    get_fixed_seed,
)
from modules.plugins.processing_run import process_images

__all__ = [
    "Processed",
    "StableDiffusionProcessing",
    "StableDiffusionProcessingImg2Img",
    "StableDiffusionProcessingTxt2Img",
    "create_infotext",
    "fix_seed",
    "get_fixed_seed",
    "process_images",
]

opt_C = 4
opt_f = 8
