"""`shared.sd_model` for extensions: the loaded engine with A1111's model attributes.

Attributes A1111 code reads (`is_sdxl`, `is_sd2`, `is_sd1`, `sd_checkpoint_info`, `sd_model_hash`,
`sd_model_checkpoint`) are answered here; anything else is looked up on the engine itself.
"""

from __future__ import annotations

from typing import Any


class ModelView:
    """A read-mostly view of the loaded `DiffusionEngine` and its `CheckpointInfo`."""

    def __init__(self, engine: Any, info: Any) -> None:
        self.engine = engine
        self.sd_checkpoint_info = info

    @property
    def is_sdxl(self) -> bool:
        return self.engine.family == "sdxl"

    @property
    def is_sd2(self) -> bool:
        return self.engine.family == "sd2"

    @property
    def is_sd1(self) -> bool:
        return self.engine.family == "sd1"

    @property
    def sd_model_hash(self) -> str | None:
        return self.sd_checkpoint_info.shorthash if self.sd_checkpoint_info is not None else None

    @property
    def sd_model_checkpoint(self) -> str | None:
        return str(self.sd_checkpoint_info.filename) if self.sd_checkpoint_info is not None else None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.__dict__["engine"], name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelView) and other.engine is self.engine

    def __hash__(self) -> int:
        return id(self.engine)
