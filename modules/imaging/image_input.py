"""Turn whatever a user uploads into a plain 8-bit RGB (or L, for masks) PIL image, or a clear error.

Handled: base64 strings with or without a `data:image/...;base64,` prefix, raw bytes, files and PIL
images; EXIF orientation; the first frame of animated images; 16-bit and 32-bit grey, CMYK, palette,
1-bit and alpha images (alpha is flattened onto a background colour, as A1111's `flatten`). Images
larger than the pixel limit are refused before they are decoded in full.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 16_777_216
DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)


class ImageInputError(ValueError):
    """An input image cannot be used; the message names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name


def decode_base64_image(data: str, field_name: str = "init_images", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode a base64 image (a data URL prefix is allowed) into a normalised image (mode kept for alpha)."""
    if not isinstance(data, str) or not data.strip():
        raise ImageInputError(field_name, "expected a base64-encoded image")
    text = DATA_URL.sub("", data.strip())
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as error:
        raise ImageInputError(field_name, f"not valid base64 ({error})") from None
    return open_image_bytes(raw, field_name, max_pixels)


def open_image_bytes(raw: bytes, field_name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open encoded image bytes, refusing unreadable data and oversized images."""
    if not raw:
        raise ImageInputError(field_name, "empty image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            _check_size(image, field_name, max_pixels)
            image.load()
    except ImageInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageInputError(field_name, f"not a readable image ({type(error).__name__})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageInputError(field_name, f"could not decode image: {error}") from None
    return normalise_image(image, field_name, max_pixels)


def open_image_file(path: Path, field_name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read and normalise an image file (used by batch processing)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ImageInputError(field_name, f"cannot read {path}: {error.strerror or error}") from None
    return open_image_bytes(raw, field_name, max_pixels)


def _check_size(image: Image.Image, field_name: str, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError(field_name, f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageInputError(field_name, f"image is {width}x{height}, more than the limit of {max_pixels} pixels")


def normalise_image(image: Image.Image, field_name: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """First frame, EXIF orientation applied, 8-bit channels: RGB, RGBA (alpha kept for masks) or L."""
    if not isinstance(image, Image.Image):
        raise ImageInputError(field_name, f"expected an image, got {type(image).__name__}")
    _check_size(image, field_name, max_pixels)
    if getattr(image, "is_animated", False):
        image.seek(0)
        image = image.copy()
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):  # a broken EXIF block: keep the pixels as stored
        image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ("RGB", "RGBA", "L"):
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if mode == "F":
            peak = 1.0 if array.max(initial=0.0) <= 1.0 else 255.0
        elif mode == "I" and array.max(initial=0) <= 255:
            peak = 255.0
        else:
            peak = 65535.0
        scaled = np.clip(np.round(array / peak * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, "L")
    if mode == "P":
        return image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if mode in ("LA", "PA", "RGBa", "La"):
        return image.convert("RGBA")
    if mode == "1":
        return image.convert("L")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as error:
        raise ImageInputError(field_name, f"unsupported image mode {mode}: {error}") from None


def flatten(image: Image.Image, background: str = "#ffffff") -> Image.Image:
    """RGB image; transparent parts are composited onto `background` (A1111's `img2img_background_color`)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        try:
            colour = ImageColor.getrgb(background or "#ffffff")[:3]
        except ValueError:
            colour = (255, 255, 255)
        base = Image.new("RGBA", image.size, colour + (255,))
        base.alpha_composite(image.convert("RGBA"))
        return base.convert("RGB")
    return image.convert("RGB")


def binary_mask(image: Image.Image, round_alpha: bool = True) -> Image.Image:
    """A mask in mode L. A mask with a non-opaque alpha channel is taken from the alpha (rounded at 128,
    as A1111), otherwise from the grey levels of the image."""
    if image.mode == "RGBA" and image.getextrema()[-1] != (255, 255):
        alpha = image.getchannel("A")
        return alpha.point(lambda value: 255 if value > 128 else 0) if round_alpha else alpha
    return image.convert("L")
