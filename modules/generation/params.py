"""Typed generation parameters with A1111's field names and defaults, validated once at the edge."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

MAX_SEED = 2**32 - 1
MAX_SIDE = 2048


class ParameterError(ValueError):
    """Invalid generation input; the message names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name


@dataclass
class Txt2ImgParams:
    """What one txt2img request asks for (A1111's `StableDiffusionProcessingTxt2Img` fields)."""

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = field(default_factory=list)
    steps: int = 20
    sampler_name: str = "Euler a"
    scheduler: str = "Automatic"
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    batch_size: int = 1
    n_iter: int = 1
    eta: float | None = None
    s_noise: float | None = None
    restore_faces: bool = False
    tiling: bool = False
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    override_settings: dict[str, Any] = field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    send_images: bool = True
    save_images: bool = False

    @classmethod
    def from_request(cls, data: dict[str, Any]) -> Txt2ImgParams:
        """Build from an API/UI dict: unknown A1111 fields are ignored, known ones type-checked."""
        known = {item.name: item for item in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known or value is None:
                continue
            values[key] = _coerce(key, value, cls.__dataclass_fields__[key].default)
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        """Raise `ParameterError` for the first out-of-range field."""
        _check_range("steps", self.steps, 1, 150)
        _check_range("cfg_scale", self.cfg_scale, 0.0, 100.0)
        _check_range("batch_size", self.batch_size, 1, 64)
        _check_range("n_iter", self.n_iter, 1, 1000)
        _check_range("subseed_strength", self.subseed_strength, 0.0, 1.0)
        for name in ("width", "height"):
            value = getattr(self, name)
            _check_range(name, value, 64, MAX_SIDE)
            if value % 8:
                raise ParameterError(name, f"must be a multiple of 8, got {value}")
        for name in ("seed", "subseed"):
            value = getattr(self, name)
            if value < -1 or value > 2**63 - 1:
                raise ParameterError(name, f"must be -1 (random) or between 0 and 2^63-1, got {value}")
        if not isinstance(self.prompt, str):
            raise ParameterError("prompt", "must be a string")
        if not isinstance(self.negative_prompt, str):
            raise ParameterError("negative_prompt", "must be a string")
        if not isinstance(self.override_settings, dict):
            raise ParameterError("override_settings", "must be an object of setting names to values")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ParameterError(name, f"must be between {low:g} and {high:g}, got {value}")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert a JSON value to the type of the field's default, naming the field on failure."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise TypeError
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if isinstance(default, float) or (default is None and name in ("eta", "s_noise")):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError, OverflowError):
        expected = type(default).__name__ if default is not None else "number"
        raise ParameterError(name, f"expected {expected}, got {value!r}") from None
    if name == "styles" and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise ParameterError(name, "expected a list of style names")
    return value


def resolve_seed(seed: int) -> int:
    """-1 (or any negative) means a random seed, as in A1111."""
    return random.randrange(MAX_SEED) if seed is None or seed < 0 else int(seed)
