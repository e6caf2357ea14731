"""A1111's `modules.devices` for extensions: the device and dtype the loaded model runs on.

A thin facade; core code never imports this module.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from modules.plugins import runtime

cpu = torch.device("cpu")


def get_optimal_device() -> torch.device:
    model = runtime.loaded_model()
    if model is not None:
        return model.device
    return torch.device("cuda") if torch.cuda.is_available() else cpu


def __getattr__(name: str) -> Any:
    if name in ("device", "device_interrogate", "device_gfpgan", "device_esrgan", "device_codeformer"):
        return get_optimal_device()
    if name in ("dtype", "dtype_unet", "dtype_vae"):
        model = runtime.loaded_model()
        return model.dtype if model is not None and hasattr(model, "dtype") else torch.float32
    raise AttributeError(f"module 'modules.devices' has no attribute {name!r}")


def torch_gc() -> None:
    """Free cached GPU memory."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def autocast(disable: bool = False) -> contextlib.AbstractContextManager:
    """A no-op context: the engine chooses its own precision."""
    return contextlib.nullcontext()


def without_autocast(disable: bool = False) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()
