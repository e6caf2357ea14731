"""A1111's `modules.sd_models` for extensions: checkpoint list and the loaded checkpoint's info.

A thin facade over the app's model manager; core code never imports this module.
"""

from __future__ import annotations

from typing import Any

from modules.models.checkpoints import CheckpointInfo
from modules.plugins import runtime

__all__ = ["CheckpointInfo", "checkpoint_tiles", "get_closet_checkpoint_match", "reload_model_weights", "select_checkpoint"]


def _models() -> Any:
    return runtime.require_context().models


def __getattr__(name: str) -> Any:
    if name == "checkpoints_list":
        context = runtime.get_context()
        return {info.title: info for info in context.models.checkpoints} if context is not None else {}
    if name == "model_data":
        return runtime.loaded_model()
    raise AttributeError(f"module 'modules.sd_models' has no attribute {name!r}")


def checkpoint_tiles(use_short: bool = False) -> list[str]:
    return [info.title for info in _models().checkpoints]


def select_checkpoint() -> CheckpointInfo | None:
    return _models().info


def get_closet_checkpoint_match(search_string: str) -> CheckpointInfo | None:
    """The checkpoint whose title or name contains `search_string` (A1111's spelling kept)."""
    wanted = search_string.strip().lower()
    for info in _models().checkpoints:
        if wanted in (info.title.lower(), info.name.lower()):
            return info
    return next((info for info in _models().checkpoints if wanted in info.title.lower()), None)


def reload_model_weights(sd_model: Any = None, info: CheckpointInfo | None = None) -> Any:
    """Load `info` (or the settings' checkpoint) if it is not loaded yet; returns the model."""
    context = runtime.require_context()
    if info is not None:
        context.models.load(info.title, vae=context.options.sd_vae)
    else:
        context.ensure_model()
    return runtime.loaded_model()
