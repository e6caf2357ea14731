"""A1111's four img2img resize modes for fitting an input image to the requested width × height.

0 "Just resize": stretch to the size. 1 "Crop and resize": scale to cover, centre, crop the overflow.
2 "Resize and fill": scale to fit, centre, fill the empty bands with the image's stretched edge rows or
columns. 3 "Just resize (latent upscale)": the image is encoded at its own size and the latent is
stretched; in pixel space (masks) it behaves like "Just resize".
"""

from __future__ import annotations

from PIL import Image

RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL, LATENT_RESIZE = range(4)


def resize_mode_index(value: int | str) -> int:
    """0..3 from an index or one of A1111's names (case-insensitive); ValueError names `resize_mode`."""
    if isinstance(value, bool):
        raise ValueError(f"resize_mode: expected 0..3 or one of {', '.join(RESIZE_MODES)}, got {value!r}")
    if isinstance(value, int) and 0 <= value < len(RESIZE_MODES):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) < len(RESIZE_MODES):
            return int(text)
        for index, name in enumerate(RESIZE_MODES):
            if name.casefold() == text.casefold():
                return index
    raise ValueError(f"resize_mode: expected 0..3 or one of {', '.join(RESIZE_MODES)}, got {value!r}")


def _scaled(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.size == (width, height):
        return image.copy()
    return image.resize((max(1, width), max(1, height)), Image.Resampling.LANCZOS)


def resize_image(mode: int, image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` fitted to `width` × `height` by resize mode `mode` (see the module docstring)."""
    mode = resize_mode_index(mode)
    if mode in (JUST_RESIZE, LATENT_RESIZE):
        return _scaled(image, width, height)
    target_ratio = width / height
    source_ratio = image.width / image.height
    if mode == CROP_AND_RESIZE:
        # cover: the side that is relatively shorter matches exactly, the other overflows
        if target_ratio > source_ratio:
            scaled_width, scaled_height = width, image.height * width // image.width
        else:
            scaled_width, scaled_height = image.width * height // image.height, height
    else:
        # fit: the side that is relatively longer matches exactly, the other leaves bands
        if target_ratio < source_ratio:
            scaled_width, scaled_height = width, image.height * width // image.width
        else:
            scaled_width, scaled_height = image.width * height // image.height, height
    scaled = _scaled(image, scaled_width, scaled_height)
    canvas = Image.new(image.mode if image.mode in ("RGB", "RGBA", "L") else "RGB", (width, height))
    left, top = width // 2 - scaled_width // 2, height // 2 - scaled_height // 2
    canvas.paste(scaled, (left, top))
    if mode == RESIZE_AND_FILL:
        _fill_bands(canvas, scaled, left, top)
    return canvas


def _fill_bands(canvas: Image.Image, scaled: Image.Image, left: int, top: int) -> None:
    """Fill the bands left by "Resize and fill" with the scaled image's first/last row or column stretched."""
    width, height = canvas.size
    if top > 0:
        bottom_band = height - top - scaled.height
        first_row = scaled.crop((0, 0, scaled.width, 1)).resize((width, top), Image.Resampling.BILINEAR)
        canvas.paste(first_row, (0, 0))
        if bottom_band > 0:
            last_row = scaled.crop((0, scaled.height - 1, scaled.width, scaled.height))
            canvas.paste(last_row.resize((width, bottom_band), Image.Resampling.BILINEAR), (0, top + scaled.height))
    if left > 0:
        right_band = width - left - scaled.width
        first_column = scaled.crop((0, 0, 1, scaled.height)).resize((left, height), Image.Resampling.BILINEAR)
        canvas.paste(first_column, (0, 0))
        if right_band > 0:
            last_column = scaled.crop((scaled.width - 1, 0, scaled.width, scaled.height))
            canvas.paste(last_column.resize((right_band, height), Image.Resampling.BILINEAR), (left + scaled.width, 0))
