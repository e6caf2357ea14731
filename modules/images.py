"""A1111's `modules.images` for extensions: `save_image`, `image_grid`, `read_info_from_image`, ...

Thin adapters over modules/imaging that also fire the image callbacks (on_before_image_saved,
on_image_saved, on_image_grid). Core code never imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from modules.imaging.filenames import FilenameContext
from modules.imaging.grid import grid_layout
from modules.imaging.grid import image_grid as core_image_grid
from modules.imaging.metadata import read_infotext
from modules.imaging.saving import save_image as core_save_image
from modules.plugins.callbacks import ImageGridLoopParams, ImageSaveParams, registry

__all__ = ["image_grid", "read_info_from_image", "save_image", "resize_image", "sanitize_filename_part"]


def _options() -> Any:
    from modules.shared import opts

    return opts


def image_grid(imgs: list[Image.Image], batch_size: int = 1, rows: int | None = None) -> Image.Image:
    """Paste `imgs` into a grid (A1111's signature); on_image_grid callbacks may change the layout."""
    if rows is None:
        rows, _ = grid_layout(len(imgs), None)
    params = ImageGridLoopParams(list(imgs), cols=-(-len(imgs) // max(rows, 1)), rows=rows)
    registry.fire("callbacks_image_grid", params)
    return core_image_grid(params.imgs, rows=params.rows)


def save_image(
    image: Image.Image,
    path: str,
    basename: str,
    seed: int | None = None,
    prompt: str | None = None,
    extension: str = "png",
    info: str | None = None,
    short_filename: bool = False,
    no_prompt: bool = False,
    grid: bool = False,
    pnginfo_section_name: str = "parameters",
    p: Any = None,
    existing_info: dict | None = None,
    forced_filename: str | None = None,
    suffix: str = "",
    save_to_dirs: bool | None = None,
) -> tuple[str, str | None]:
    """Save with an A1111-style name and the infotext embedded; returns (image path, .txt path or None)."""
    opts = _options()
    params = ImageSaveParams(image, p, "", {pnginfo_section_name: info} if info else dict(existing_info or {}))
    registry.fire("callbacks_before_image_saved", params)
    if forced_filename:
        pattern, add_number = forced_filename, False
    elif short_filename or no_prompt:
        pattern, add_number = "[seed]" if seed is not None and not short_filename else "", bool(opts.save_images_add_number)
    else:
        pattern = "" if grid else str(opts.samples_filename_pattern or "")
        add_number = bool(opts.save_images_add_number)
    context = FilenameContext(prompt=prompt or getattr(p, "prompt", "") or "", seed=seed)
    save_txt = bool(opts.save_txt)
    saved = core_save_image(
        params.image,
        Path(path),
        context=context,
        pattern=pattern + suffix if pattern else pattern,
        extension=extension,
        infotext=params.pnginfo.get(pnginfo_section_name) if params.pnginfo else None,
        add_number=add_number,
        save_txt=save_txt,
        quality=int(opts.jpeg_quality),
        basename=basename,
    )
    params.filename = str(saved)
    registry.fire("callbacks_image_saved", params)
    text_path = saved.with_suffix(".txt")
    return str(saved), str(text_path) if save_txt and text_path.exists() else None


def read_info_from_image(image: Image.Image) -> tuple[str | None, dict[str, Any]]:
    """(infotext, other metadata items) of an image."""
    items = {key: value for key, value in image.info.items() if key != "parameters"}
    return read_infotext(image), items


def resize_image(resize_mode: int, im: Image.Image, width: int, height: int, upscaler_name: str | None = None) -> Image.Image:
    """A1111's resize modes 0 (stretch), 1 (crop), 2 (fill)."""
    from modules.generation.resize import resize_image as core_resize

    return core_resize(resize_mode, im, width, height)


def sanitize_filename_part(text: str | None, replace_spaces: bool = True) -> str | None:
    if text is None:
        return None
    if replace_spaces:
        text = text.replace(" ", "_")
    invalid = '<>:"/\\|?*\n\r\t'
    return "".join("_" if char in invalid else char for char in text).strip(". ")[:128]
