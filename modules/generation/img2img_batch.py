"""img2img "Batch": every image of an input directory, an optional mask directory (a mask with the same
file stem, or the only mask there) and optional per-image settings from the image's own infotext.

A file that cannot be read (or whose generation fails on bad input) is reported and skipped; the batch
goes on. Output goes to `output_dir` as `<input stem>.png` (infotext inside) when one is given, else to the normal
img2img folders.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modules.generation.params import Img2ImgParams, ParameterError
from modules.generation.results import Processed
from modules.imaging.image_input import ImageInputError, open_image_file
from modules.imaging.infotext import parse_infotext
from modules.imaging.metadata import encode_image, read_infotext
from modules.imaging.saving import atomic_write_bytes

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif")
# infotext key → parameter, for "PNG info" batch overrides (A1111's default selection)
INFOTEXT_FIELDS = {
    "Prompt": ("prompt", str),
    "Negative prompt": ("negative_prompt", str),
    "Seed": ("seed", int),
    "CFG scale": ("cfg_scale", float),
    "Sampler": ("sampler_name", str),
    "Steps": ("steps", int),
}


@dataclass
class BatchResult:
    """What a batch produced: one `Processed` per input that ran, the files written, skipped inputs."""

    processed: list[Processed] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False


def list_images(directory: Path) -> list[Path]:
    """Image files directly inside `directory`, sorted by name."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ParameterError("img2img_batch_input_dir", f"not a directory: {folder}")
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def find_mask(masks: list[Path], image_path: Path) -> Path | None:
    """The mask whose stem matches the image's; with a single mask file, that one."""
    if len(masks) == 1:
        return masks[0]
    for mask in masks:
        if mask.stem == image_path.stem:
            return mask
    return None


def _infotext_overrides(image_path: Path, image) -> dict[str, object]:
    text = read_infotext(image)
    if not text:
        return {}
    values = parse_infotext(text)
    overrides: dict[str, object] = {}
    for key, (name, kind) in INFOTEXT_FIELDS.items():
        if key in values:
            try:
                overrides[name] = kind(values[key])
            except (TypeError, ValueError):
                log.warning("%s: ignoring infotext %s=%r", image_path.name, key, values[key])
    return overrides


def run_batch(
    run: Callable[[Img2ImgParams], Processed],
    params: Img2ImgParams,
    input_dir: Path,
    output_dir: Path | None = None,
    mask_dir: Path | None = None,
    use_png_info: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    is_interrupted: Callable[[], bool] = lambda: False,
) -> BatchResult:
    """Run `params` (its init images and mask are replaced) on every image of `input_dir`.

    `run` generates one request (e.g. `AppContext.run_img2img`); `progress(done, total, name)` is called
    before each file; `is_interrupted()` stops the batch between files.
    """
    images = list_images(input_dir)
    masks = list_images(mask_dir) if mask_dir else []
    result = BatchResult()
    for number, image_path in enumerate(images):
        if is_interrupted():
            result.interrupted = True
            break
        if progress:
            progress(number, len(images), image_path.name)
        try:
            image = open_image_file(image_path, "init_images")
            request = copy.copy(params)
            request.init_images = [image]
            request.override_settings = dict(params.override_settings)
            if use_png_info:
                for name, value in _infotext_overrides(image_path, image).items():
                    setattr(request, name, value)
            mask_path = find_mask(masks, image_path) if masks else None
            request.mask = open_image_file(mask_path, "mask") if mask_path else params.mask
            if output_dir is not None:
                request.do_not_save_samples = True
                request.do_not_save_grid = True
            request.validate()
            processed = run(request)
        except (ImageInputError, ParameterError, ValueError) as error:
            message = f"{image_path.name}: {error}"
            log.warning("img2img batch: skipping %s", message)
            result.errors.append(message)
            continue
        result.processed.append(processed)
        if output_dir is not None:
            result.saved.extend(_save_outputs(processed, Path(output_dir), image_path.stem))
        if processed.interrupted:
            result.interrupted = True
            break
    if progress:
        progress(len(images), len(images), "")
    return result


def _save_outputs(processed: Processed, output_dir: Path, stem: str) -> list[Path]:
    """Save the images (not the grid) as `<stem>.png`, or `<stem>-N.png` when there are several."""
    outputs = list(zip(processed.images, processed.infotexts, strict=True))[processed.index_of_first_image :]
    output_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for index, (image, infotext) in enumerate(outputs):
        name = stem if len(outputs) == 1 else f"{stem}-{index + 1}"
        path = output_dir / f"{name}.png"
        atomic_write_bytes(path, encode_image(image, "png", infotext))
        saved.append(path)
    return saved
