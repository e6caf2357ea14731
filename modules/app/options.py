"""The option registry and the persisted settings (config.json).

One `OptionInfo` per setting drives the Settings tab, the `/sdapi/v1/options` API and validation. Option
keys are A1111's, so an A1111 `config.json` is read as it is and extensions find the names they expect.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.imaging.saving import atomic_write_text

log = logging.getLogger(__name__)


class OptionError(ValueError):
    """A setting was given a value it cannot take; the message names the setting."""


@dataclass
class OptionInfo:
    """One setting: its default, label, section and the values it accepts."""

    default: Any
    label: str = ""
    section: tuple[str, str] = ("other", "Other")
    choices: Callable[[], list[str]] | list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    comment: str = ""
    on_change: Callable[[], None] | None = None

    def choice_list(self) -> list[str] | None:
        if self.choices is None:
            return None
        return list(self.choices()) if callable(self.choices) else list(self.choices)


SECTION_SAVING = ("saving-images", "Saving images/grids")
SECTION_PATHS = ("saving-paths", "Paths for saving")
SECTION_SD = ("sd", "Stable Diffusion")
SECTION_SAMPLER = ("sampler-params", "Sampler parameters")
SECTION_UI = ("ui", "User interface")
SECTION_IMG2IMG = ("img2img", "img2img")
SECTION_LIMITS = ("limits", "Generation limits")
SECTION_EXTENSIONS = ("extensions", "Extensions")

# Settings that bound what a request may ask for; the API never changes them (POST /options ignores them).
LIMIT_OPTION_KEYS = (
    "limit_max_side",
    "limit_max_pixels",
    "limit_max_steps",
    "limit_max_batch_size",
    "limit_max_batch_count",
    "limit_max_cfg_scale",
)


def default_options() -> dict[str, OptionInfo]:
    """The built-in settings, in Settings-tab order. Extensions may add more at startup."""
    return {
        "samples_save": OptionInfo(True, "Always save all generated images", SECTION_SAVING),
        "samples_format": OptionInfo("png", "File format for images", SECTION_SAVING, ["png", "jpg", "jpeg", "webp"]),
        "samples_filename_pattern": OptionInfo("", "Images filename pattern", SECTION_SAVING),
        "save_images_add_number": OptionInfo(True, "Add number to filename when saving", SECTION_SAVING),
        "grid_save": OptionInfo(True, "Always save all generated image grids", SECTION_SAVING),
        "grid_format": OptionInfo("png", "File format for grids", SECTION_SAVING, ["png", "jpg", "jpeg", "webp"]),
        "return_grid": OptionInfo(True, "Show grid in gallery", SECTION_SAVING),
        "enable_pnginfo": OptionInfo(True, "Save text information about generation parameters as chunks to png files", SECTION_SAVING),
        "save_txt": OptionInfo(False, "Create a text file next to every image with generation parameters", SECTION_SAVING),
        "jpeg_quality": OptionInfo(80, "Quality for saved jpeg and webp images", SECTION_SAVING, minimum=1, maximum=100, step=1),
        "outdir_samples": OptionInfo("", "Output directory for images; if empty, defaults to three directories below", SECTION_PATHS),
        "outdir_txt2img_samples": OptionInfo("outputs/txt2img-images", "Output directory for txt2img images", SECTION_PATHS),
        "outdir_img2img_samples": OptionInfo("outputs/img2img-images", "Output directory for img2img images", SECTION_PATHS),
        "outdir_extras_samples": OptionInfo("outputs/extras-images", "Output directory for images from extras tab", SECTION_PATHS),
        "outdir_grids": OptionInfo("", "Output directory for grids; if empty, defaults to two directories below", SECTION_PATHS),
        "outdir_txt2img_grids": OptionInfo("outputs/txt2img-grids", "Output directory for txt2img grids", SECTION_PATHS),
        "outdir_img2img_grids": OptionInfo("outputs/img2img-grids", "Output directory for img2img grids", SECTION_PATHS),
        "save_to_dirs": OptionInfo(True, "Save images to a subdirectory", SECTION_PATHS),
        "grid_save_to_dirs": OptionInfo(True, "Save grids to a subdirectory", SECTION_PATHS),
        "directories_filename_pattern": OptionInfo("[date]", "Directory name pattern", SECTION_PATHS),
        "sd_model_checkpoint": OptionInfo("", "Stable Diffusion checkpoint", SECTION_SD),
        "sd_vae": OptionInfo("Automatic", "SD VAE", SECTION_SD),
        "sd_prediction_type": OptionInfo(
            "Automatic",
            "Prediction type for SD2 checkpoints without a .yaml",
            SECTION_SD,
            ["Automatic", "epsilon", "v_prediction"],
        ),
        "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip", SECTION_SD, minimum=1, maximum=12, step=1),
        "emphasis": OptionInfo(
            "Original",
            "Emphasis mode",
            SECTION_SD,
            ["Original", "No norm", "Ignore", "None"],
            comment="(text) and [text] change a word's weight; Original restores the mean afterwards",
        ),
        "comma_padding_backtrack": OptionInfo(
            20, "Prompt word wrap length limit (tokens moved to the next chunk after a comma)", SECTION_SD, minimum=0, maximum=74, step=1
        ),
        "pad_cond_uncond": OptionInfo(False, "Pad prompt/negative prompt to be same length (with empty-prompt chunks)", SECTION_SD),
        "textual_inversion_add_hashes_to_infotext": OptionInfo(True, "Add Textual Inversion hashes to infotext", SECTION_SD),
        "sdxl_crop_top": OptionInfo(0, "SDXL top coordinate of the crop", SECTION_SD, minimum=0, step=1),
        "sdxl_crop_left": OptionInfo(0, "SDXL left coordinate of the crop", SECTION_SD, minimum=0, step=1),
        "randn_source": OptionInfo("GPU", "Random number generator source", SECTION_SD, ["GPU", "CPU", "NV"]),
        "eta_noise_seed_delta": OptionInfo(0, "Eta noise seed delta (ENSD)", SECTION_SAMPLER, minimum=0, step=1),
        "eta_ancestral": OptionInfo(1.0, "Eta for k-diffusion samplers", SECTION_SAMPLER, minimum=0, maximum=1, step=0.01),
        "eta_ddim": OptionInfo(0.0, "Eta for DDIM", SECTION_SAMPLER, minimum=0, maximum=1, step=0.01),
        "s_noise": OptionInfo(1.0, "sigma noise", SECTION_SAMPLER, minimum=0, maximum=1.1, step=0.01),
        "img2img_fix_steps": OptionInfo(False, "With img2img, do exactly the amount of steps the slider specifies", SECTION_IMG2IMG),
        "img2img_background_color": OptionInfo(
            "#ffffff", "With img2img, fill transparent parts of the input image with this color", SECTION_IMG2IMG
        ),
        "img2img_extra_noise": OptionInfo(0.0, "Extra noise multiplier for img2img", SECTION_IMG2IMG, minimum=0.0, maximum=1.0, step=0.01),
        "initial_noise_multiplier": OptionInfo(1.0, "Noise multiplier for img2img", SECTION_IMG2IMG, minimum=0.0, maximum=1.5, step=0.001),
        "inpainting_mask_weight": OptionInfo(
            1.0, "Inpainting conditioning mask strength", SECTION_IMG2IMG, minimum=0.0, maximum=1.0, step=0.01
        ),
        "show_progress_every_n_steps": OptionInfo(
            10, "Live preview display period (steps; 0 disables)", SECTION_UI, minimum=-1, maximum=32, step=1
        ),
        "live_previews_enable": OptionInfo(True, "Show live previews of the created image", SECTION_UI),
        "show_progress_type": OptionInfo("Approx cheap", "Live preview method", SECTION_UI, ["Approx cheap", "Full"]),
        "quicksettings_list": OptionInfo(["sd_model_checkpoint", "sd_vae", "CLIP_stop_at_last_layers"], "Quicksettings list", SECTION_UI),
        "limit_max_side": OptionInfo(8192, "Largest width or height a request may ask for", SECTION_LIMITS, minimum=64, step=8),
        "limit_max_pixels": OptionInfo(16_777_216, "Largest image (width × height, also for input images)", SECTION_LIMITS, minimum=4096),
        "limit_max_steps": OptionInfo(1000, "Most sampling steps per request", SECTION_LIMITS, minimum=1, step=1),
        "limit_max_batch_size": OptionInfo(64, "Largest batch size", SECTION_LIMITS, minimum=1, step=1),
        "limit_max_batch_count": OptionInfo(1000, "Largest batch count", SECTION_LIMITS, minimum=1, step=1),
        "limit_max_cfg_scale": OptionInfo(100.0, "Largest CFG scale", SECTION_LIMITS, minimum=1.0),
        "disabled_extensions": OptionInfo([], "Disable these extensions (folder names)", SECTION_EXTENSIONS),
        "disable_all_extensions": OptionInfo(
            "none", "Disable all extensions (preserves the list of disabled extensions)", SECTION_EXTENSIONS, ["none", "extra", "all"]
        ),
    }


_MISSING = object()


@dataclass
class Options:
    """Current settings: registered `OptionInfo`s plus the values read from or saved to config.json.

    Attribute access (`opts.samples_format`) mirrors A1111's `shared.opts`. Writes go through `set`,
    which validates; `save` writes config.json atomically.
    """

    infos: dict[str, OptionInfo] = field(default_factory=default_options)
    values: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lock", threading.RLock())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("infos", "values", "path"):
            raise AttributeError(name)
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise AttributeError(f"no such setting: {name}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("infos", "values", "path") or name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.set(name, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self.infos)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.values:
            return self.values[key]
        info = self.infos.get(key)
        return copy.deepcopy(info.default) if info is not None else default

    def add_option(self, key: str, info: OptionInfo) -> None:
        """Register a setting (extensions call this through `shared.opts.add_option`)."""
        self.infos[key] = info

    def validate(self, key: str, value: Any) -> Any:
        """Return `value` converted to the setting's type, or raise `OptionError` naming the setting."""
        info = self.infos.get(key)
        if info is None:
            return value
        default = info.default
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError("expected true or false")
            elif isinstance(default, int):
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise TypeError("expected an integer")
                value = int(float(value))
            elif isinstance(default, float):
                if isinstance(value, bool):
                    raise TypeError("expected a number")
                value = float(value)
            elif isinstance(default, str):
                if not isinstance(value, str):
                    raise TypeError("expected a string")
            elif isinstance(default, list):
                if isinstance(value, str):
                    value = [part.strip() for part in value.split(",") if part.strip()]
                if not isinstance(value, list):
                    raise TypeError("expected a list")
        except (TypeError, ValueError) as error:
            raise OptionError(f"setting {key!r}: {error}, got {value!r}") from None
        if info.minimum is not None and value < info.minimum:
            raise OptionError(f"setting {key!r}: {value} is below the minimum {info.minimum}")
        if info.maximum is not None and value > info.maximum:
            raise OptionError(f"setting {key!r}: {value} is above the maximum {info.maximum}")
        choices = info.choice_list()
        if choices is not None and isinstance(value, str) and choices and value not in choices:
            raise OptionError(f"setting {key!r}: {value!r} is not one of {', '.join(choices)}")
        return value

    def set(self, key: str, value: Any) -> bool:
        """Validate and store one value. Returns True when the value changed."""
        value = self.validate(key, value)
        with self._lock:
            old = self.get(key, _MISSING)
            if old == value:
                return False
            self.values[key] = value
        info = self.infos.get(key)
        if info is not None and info.on_change is not None:
            info.on_change()
        return True

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Validate every change first, then apply them all; nothing changes if any is invalid."""
        validated = {key: self.validate(key, value) for key, value in changes.items()}
        return [key for key, value in validated.items() if self.set(key, value)]

    def data(self) -> dict[str, Any]:
        """Every setting with its current value (registered defaults included)."""
        with self._lock:
            result = {key: self.get(key) for key in self.infos}
            result.update(self.values)
            return copy.deepcopy(result)

    def copy_with(self, overrides: dict[str, Any]) -> Options:
        """A per-job copy with `overrides` applied; the shared settings are left untouched."""
        clone = Options(infos=self.infos, values=copy.deepcopy(self.values), path=None)
        for key, value in overrides.items():
            clone.values[key] = clone.validate(key, value)
        return clone

    def load(self, path: Path) -> None:
        """Read config.json; an unreadable file is kept aside and defaults are used."""
        self.path = path
        if not path.exists():
            return
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            backup = path.with_suffix(path.suffix + ".bad")
            log.warning("settings file %s is unreadable (%s); using defaults, kept it as %s", path, error, backup)
            path.replace(backup)
            return
        with self._lock:
            self.values.update(loaded)

    def save(self, path: Path | None = None) -> None:
        """Write config.json atomically (temporary file, fsync, rename)."""
        target = path or self.path
        if target is None:
            return
        with self._lock:
            text = json.dumps(self.values, indent=4, ensure_ascii=False, default=str)
        atomic_write_text(target, text)
