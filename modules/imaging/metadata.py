"""Store and read infotext in PNG, JPEG and WebP images the way A1111 does.

* PNG: a text chunk named ``parameters`` (``tEXt``, or ``iTXt`` when the text
  is not Latin-1).
* JPEG and WebP: EXIF ``UserComment`` (tag 0x9286) holding ``UNICODE\\0`` and
  UTF-16 text, inserted into the encoded file with piexif.

A JPEG APP1 segment cannot exceed 65533 bytes; when the EXIF block would be
larger the text goes into a JPEG comment (``COM``) segment instead, UTF-8
encoded and cut at a character boundary if even that is too long.
"""

from __future__ import annotations

import io
import logging

import piexif
import piexif.helper
from PIL import Image, PngImagePlugin

logger = logging.getLogger(__name__)

PNG_TEXT_KEY = "parameters"
JPEG_SEGMENT_LIMIT = 65533
FORMAT_ALIASES: dict[str, str] = {
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "webp": "webp",
}


def normalise_format(image_format: str) -> str:
    """Map an extension or format name to ``png``, ``jpeg`` or ``webp``.

    Raises ``ValueError`` naming ``samples_format`` for anything else.
    """
    key = image_format.lower().lstrip(".")
    if key not in FORMAT_ALIASES:
        supported = ", ".join(FORMAT_ALIASES)
        raise ValueError(f"unsupported samples_format {image_format!r}; use one of {supported}")
    return FORMAT_ALIASES[key]


def build_exif(infotext: str) -> bytes:
    """Return an EXIF block (``Exif\\0\\0`` + TIFF) whose UserComment is ``infotext``."""
    comment = piexif.helper.UserComment.dump(infotext, encoding="unicode")
    return piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})


def _convert_for_format(image: Image.Image, image_format: str) -> Image.Image:
    """Convert modes the target format cannot store (JPEG has no alpha)."""
    if image_format == "jpeg":
        if image.mode in ("RGB", "L"):
            return image
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            # The alpha channel is discarded, not composited, as A1111 does.
            return image.convert("RGBA").convert("RGB")
        return image.convert("RGB")
    if image_format == "webp":
        if image.mode in ("RGB", "RGBA"):
            return image
        has_alpha = image.mode in ("LA", "PA") or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"):
        return image
    return image.convert("RGBA" if "A" in image.mode else "RGB")


def _truncate_utf8(text: str, limit: int) -> bytes:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore").encode()


def encode_image(
    image: Image.Image,
    format: str,
    infotext: str | None,
    quality: int = 80,
    *,
    lossless: bool = False,
) -> bytes:
    """Encode ``image`` as PNG, JPEG or WebP bytes carrying ``infotext``.

    ``quality`` applies to JPEG and lossy WebP; ``lossless`` selects lossless
    WebP. RGBA images are converted to RGB for JPEG.
    """
    target = normalise_format(format)
    picture = _convert_for_format(image, target)
    buffer = io.BytesIO()
    if target == "png":
        png_info = None
        if infotext is not None:
            png_info = PngImagePlugin.PngInfo()
            png_info.add_text(PNG_TEXT_KEY, infotext)
        picture.save(buffer, format="PNG", pnginfo=png_info)
        return buffer.getvalue()

    if target == "jpeg":
        picture.save(buffer, format="JPEG", quality=quality)
    else:
        picture.save(buffer, format="WEBP", quality=quality, lossless=lossless)
    encoded = buffer.getvalue()
    if infotext is None:
        return encoded

    exif = build_exif(infotext)
    if target == "jpeg" and len(exif) > JPEG_SEGMENT_LIMIT:
        logger.warning("infotext too long for JPEG EXIF; storing a JPEG comment")
        buffer = io.BytesIO()
        comment = _truncate_utf8(infotext, JPEG_SEGMENT_LIMIT)
        picture.save(buffer, format="JPEG", quality=quality, comment=comment)
        return buffer.getvalue()
    output = io.BytesIO()
    piexif.insert(exif, encoded, output)
    return output.getvalue()


def _read_exif_comment(exif: bytes) -> str | None:
    try:
        tags = piexif.load(exif)
    except Exception:  # piexif raises many kinds on malformed data
        logger.debug("unreadable EXIF block", exc_info=True)
        return None
    raw = tags.get("Exif", {}).get(piexif.ExifIFD.UserComment)
    if not raw:
        return None
    try:
        text = piexif.helper.UserComment.load(raw)
    except ValueError:
        text = raw.decode("utf-8", errors="ignore")
    return text.rstrip("\x00") or None


def read_infotext(image: Image.Image) -> str | None:
    """Return the infotext stored in ``image``, or ``None``.

    Looks at the PNG ``parameters`` text, then the EXIF UserComment, then a
    ``comment`` (GIF or JPEG comment; bytes are decoded as UTF-8).
    """
    text = image.info.get(PNG_TEXT_KEY)
    if isinstance(text, str) and text:
        return text
    exif = image.info.get("exif")
    if isinstance(exif, bytes) and exif:
        if not exif.startswith(b"Exif"):
            exif = b"Exif\x00\x00" + exif
        text = _read_exif_comment(exif)
        if text:
            return text
    comment = image.info.get("comment")
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", errors="replace")
    if isinstance(comment, str) and comment:
        return comment
    return None
