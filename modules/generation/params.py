"""Typed generation parameters with A1111's field names and defaults, validated once at the edge."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

MAX_SEED = 2**32 - 1
MAX_SIDE = 2048


@dataclass(frozen=True)
class GenerationLimits:
    """Bounds checked on every request; the `limit_*` settings adjust them (never through the API)."""

    max_side: int = 8192
    max_pixels: int = 16_777_216
    max_steps: int = 1000
    max_batch_size: int = 64
    max_batch_count: int = 1000
    max_cfg_scale: float = 100.0

    @classmethod
    def from_options(cls, options: Any) -> GenerationLimits:
        """Read the `limit_*` settings (missing ones keep the defaults above)."""
        defaults = cls()
        return cls(
            max_side=int(options.get("limit_max_side", defaults.max_side)),
            max_pixels=int(options.get("limit_max_pixels", defaults.max_pixels)),
            max_steps=int(options.get("limit_max_steps", defaults.max_steps)),
            max_batch_size=int(options.get("limit_max_batch_size", defaults.max_batch_size)),
            max_batch_count=int(options.get("limit_max_batch_count", defaults.max_batch_count)),
            max_cfg_scale=float(options.get("limit_max_cfg_scale", defaults.max_cfg_scale)),
        )


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
    def from_request(cls, data: dict[str, Any], limits: GenerationLimits | None = None) -> Txt2ImgParams:
        """Build from an API/UI dict: unknown A1111 fields are ignored, known ones type-checked."""
        known = {item.name: item for item in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known or value is None:
                continue
            values[key] = _coerce(key, value, cls.__dataclass_fields__[key].default)
        params = cls(**values)
        params.validate(limits)
        return params

    def validate(self, limits: GenerationLimits | None = None) -> None:
        """Raise `ParameterError` for the first out-of-range field."""
        limits = limits or GenerationLimits()
        _check_range("steps", self.steps, 1, limits.max_steps)
        _check_range("cfg_scale", self.cfg_scale, 0.0, limits.max_cfg_scale)
        _check_range("batch_size", self.batch_size, 1, limits.max_batch_size)
        _check_range("n_iter", self.n_iter, 1, limits.max_batch_count)
        _check_range("subseed_strength", self.subseed_strength, 0.0, 1.0)
        for name in ("width", "height"):
            value = getattr(self, name)
            _check_range(name, value, 64, limits.max_side)
            if value % 8:
                raise ParameterError(name, f"must be a multiple of 8, got {value}")
        if self.width * self.height > limits.max_pixels:
            raise ParameterError("width", f"width × height = {self.width * self.height} pixels is above the limit of {limits.max_pixels}")
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
            number = float(value)
            if not math.isfinite(number):
                raise ParameterError(name, f"must be a finite number, got {value!r}")
            return number
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


MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")


@dataclass
class Img2ImgParams(Txt2ImgParams):
    """An img2img / inpainting request (A1111's `StableDiffusionProcessingImg2Img` fields).

    `init_images` are PIL images (base64 strings are decoded by `from_request`); `mask` is a PIL image
    (white = repaint) or None. `inpainting_fill`: 0 fill, 1 original, 2 latent noise, 3 latent nothing.
    `inpaint_full_res` is "Only masked"; `resize_mode` is 0..3 or one of A1111's names. Defaults are
    those of A1111's API (its UI starts from fill "original", "Whole picture" and padding 32).
    """

    init_images: list[Any] = field(default_factory=list)
    mask: Any = None
    denoising_strength: float = 0.75
    resize_mode: int = 0
    mask_blur: int = 4
    mask_blur_x: int | None = None
    mask_blur_y: int | None = None
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    image_cfg_scale: float | None = None
    initial_noise_multiplier: float | None = None
    include_init_images: bool = False

    @classmethod
    def from_request(cls, data: dict[str, Any], limits: GenerationLimits | None = None) -> Img2ImgParams:
        """Like `Txt2ImgParams.from_request`; also decodes base64 `init_images`/`mask` and A1111's names
        for `resize_mode` and `inpainting_fill`."""
        from modules.generation.resize import resize_mode_index
        from modules.imaging.image_input import ImageInputError, decode_base64_image, normalise_image

        data = dict(data)
        max_pixels = (limits or GenerationLimits()).max_pixels
        try:
            images = data.pop("init_images", None) or []
            if not isinstance(images, list | tuple):
                images = [images]
            data["init_images"] = [
                decode_base64_image(item, "init_images", max_pixels)
                if isinstance(item, str)
                else normalise_image(item, "init_images", max_pixels)
                for item in images
                if item is not None
            ]
            mask = data.pop("mask", None)
            if isinstance(mask, str) and mask:
                data["mask"] = decode_base64_image(mask, "mask", max_pixels)
            elif mask is not None and mask != "":
                data["mask"] = normalise_image(mask, "mask", max_pixels)
        except ImageInputError as error:
            raise ParameterError(error.field_name, str(error).split(": ", 1)[-1]) from None
        if "resize_mode" in data and data["resize_mode"] is not None:
            try:
                data["resize_mode"] = resize_mode_index(data["resize_mode"])
            except ValueError as error:
                raise ParameterError("resize_mode", str(error).split(": ", 1)[-1]) from None
        fill = data.get("inpainting_fill")
        if isinstance(fill, str) and fill.strip().casefold() in MASKED_CONTENT:
            data["inpainting_fill"] = MASKED_CONTENT.index(fill.strip().casefold())
        invert = data.get("inpainting_mask_invert")
        if isinstance(invert, str) and invert.strip().casefold() in ("inpaint masked", "inpaint not masked"):
            data["inpainting_mask_invert"] = int(invert.strip().casefold() == "inpaint not masked")
        for name in ("image_cfg_scale", "initial_noise_multiplier", "mask_blur_x", "mask_blur_y"):
            value = data.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
                raise ParameterError(name, f"expected a number, got {value!r}")
        params = super().from_request(data, limits)
        assert isinstance(params, Img2ImgParams)
        return params

    def validate(self, limits: GenerationLimits | None = None) -> None:
        """Also turns A1111's names for `resize_mode`, `inpainting_fill` and the mask mode into numbers."""
        from modules.generation.resize import resize_mode_index

        super().validate(limits)
        if isinstance(self.resize_mode, str):
            try:
                self.resize_mode = resize_mode_index(self.resize_mode)
            except ValueError as error:
                raise ParameterError("resize_mode", str(error).split(": ", 1)[-1]) from None
        if isinstance(self.inpainting_fill, str) and self.inpainting_fill.strip().casefold() in MASKED_CONTENT:
            self.inpainting_fill = MASKED_CONTENT.index(self.inpainting_fill.strip().casefold())
        if isinstance(self.inpainting_mask_invert, bool | str):
            text = str(self.inpainting_mask_invert).strip().casefold()
            self.inpainting_mask_invert = int(text in ("true", "1", "inpaint not masked"))
        for name in ("resize_mode", "inpainting_fill", "inpaint_full_res_padding", "mask_blur"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int | float):
                raise ParameterError(name, f"expected a number, got {getattr(self, name)!r}")
        if not isinstance(self.init_images, list) or not self.init_images:
            raise ParameterError("init_images", "at least one init image is required")
        for image in self.init_images:
            if not hasattr(image, "size") or not hasattr(image, "convert"):
                raise ParameterError("init_images", f"expected images, got {type(image).__name__}")
        if self.mask is not None and not (hasattr(self.mask, "size") and hasattr(self.mask, "convert")):
            raise ParameterError("mask", f"expected an image, got {type(self.mask).__name__}")
        if len(self.init_images) > 1 and len(self.init_images) > self.batch_size:
            raise ParameterError("init_images", f"{len(self.init_images)} images given for a batch size of {self.batch_size}")
        _check_range("denoising_strength", self.denoising_strength, 0.0, 1.0)
        _check_range("resize_mode", self.resize_mode, 0, 3)
        _check_range("mask_blur", self.mask_blur, 0, 256)
        for name in ("mask_blur_x", "mask_blur_y"):
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), 0, 256)
        _check_range("inpainting_fill", self.inpainting_fill, 0, 3)
        _check_range("inpaint_full_res_padding", self.inpaint_full_res_padding, 0, 2048)
        _check_range("inpainting_mask_invert", self.inpainting_mask_invert, 0, 1)
        if self.image_cfg_scale is not None:
            _check_range("image_cfg_scale", self.image_cfg_scale, 0.0, 100.0)
        if self.initial_noise_multiplier is not None:
            _check_range("initial_noise_multiplier", self.initial_noise_multiplier, 0.0, 1.5)


def resolve_seed(seed: int) -> int:
    """-1 (or any negative) means a random seed, as in A1111."""
    return random.randrange(MAX_SEED) if seed is None or seed < 0 else int(seed)
