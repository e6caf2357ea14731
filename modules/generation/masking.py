"""Inpainting masks: blur, the "Only masked" crop region, "fill" of the masked area, latent masks and
the final overlay that puts the unmasked input pixels back.

Masks are PIL images in mode L: 255 = repaint, 0 = keep.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageChops, ImageFilter
from scipy.ndimage import gaussian_filter, zoom

from modules.generation.resize import CROP_AND_RESIZE, resize_image

# (blur radius, repeats) layers for "fill": wide blurs give the background colour, narrow ones the detail
FILL_LAYERS = ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1))


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = int(2.5 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2.0 * sigma * sigma))
    return kernel / kernel.sum()


def _blur_axis(array: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """1-D Gaussian along `axis` with a kernel of 2·int(2.5σ+0.5)+1 taps and mirrored borders."""
    kernel = _gaussian_kernel(sigma)
    radius = len(kernel) // 2
    size = array.shape[axis]
    if size == 1:
        return array
    pad = [(0, 0)] * array.ndim
    pad[axis] = (radius, radius)
    # mirror without repeating the edge pixel; very wide kernels fall back to edge padding
    mode = "reflect" if radius < size else "edge"
    padded = np.pad(array, pad, mode=mode)
    result = np.zeros_like(array, dtype=np.float64)
    for index, weight in enumerate(kernel):
        result += weight * np.take(padded, range(index, index + size), axis=axis)
    return result


def blur_mask(mask: Image.Image, blur_x: float, blur_y: float) -> Image.Image:
    """Separable Gaussian blur of a mode-L mask with standard deviations `blur_x`, `blur_y` (pixels)."""
    if blur_x <= 0 and blur_y <= 0:
        return mask
    array = np.asarray(mask.convert("L"), dtype=np.float64)
    if blur_x > 0:
        array = _blur_axis(array, float(blur_x), axis=1)
    if blur_y > 0:
        array = _blur_axis(array, float(blur_y), axis=0)
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8), "L")


def crop_region(mask: Image.Image, padding: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x1, y1, x2, y2) of the mask's non-zero pixels grown by `padding` and clipped to the
    image; None for an empty mask."""
    array = np.asarray(mask.convert("L"))
    rows = np.flatnonzero(array.any(axis=1))
    columns = np.flatnonzero(array.any(axis=0))
    if rows.size == 0:
        return None
    height, width = array.shape
    return (
        max(int(columns[0]) - padding, 0),
        max(int(rows[0]) - padding, 0),
        min(int(columns[-1]) + 1 + padding, width),
        min(int(rows[-1]) + 1 + padding, height),
    )


def _grow_span(start: int, end: int, wanted: int, limit: int) -> tuple[int, int]:
    """Grow [start, end) to `wanted` long, centred, shifted back inside [0, limit)."""
    extra = wanted - (end - start)
    start -= extra // 2
    end += extra - extra // 2
    if end > limit:
        start -= end - limit
        end = limit
    if start < 0:
        end -= start
        start = 0
    return start, min(end, limit)


def expand_crop_region(
    region: tuple[int, int, int, int], width: int, height: int, image_width: int, image_height: int
) -> tuple[int, int, int, int]:
    """Grow `region` so its aspect ratio matches the processing size `width` × `height`, staying inside the
    image where it can (A1111's behaviour: the crop is then scaled to the processing size undistorted)."""
    x1, y1, x2, y2 = region
    region_ratio = (x2 - x1) / (y2 - y1)
    processing_ratio = width / height
    if region_ratio > processing_ratio:
        wanted = int((x2 - x1) / processing_ratio)
        y1, y2 = _grow_span(y1, y2, wanted, image_height)
    elif region_ratio < processing_ratio:
        wanted = int((y2 - y1) * processing_ratio)
        x1, x2 = _grow_span(x1, x2, wanted, image_width)
    return x1, y1, x2, y2


def _wide_blur(layer: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of an (H, W, C) array; wide radii are blurred on a block-averaged copy and scaled
    back up, which is indistinguishable at those widths and keeps "fill" fast on large images."""
    factor = max(1, int(radius) // 4)
    if factor == 1:
        return gaussian_filter(layer, sigma=(radius, radius, 0), mode="nearest", truncate=2.5)
    height, width, channels = layer.shape
    padded_height, padded_width = -(-height // factor) * factor, -(-width // factor) * factor
    padded = np.pad(layer, ((0, padded_height - height), (0, padded_width - width), (0, 0)), mode="edge")
    small = padded.reshape(padded_height // factor, factor, padded_width // factor, factor, channels).mean(axis=(1, 3))
    small = gaussian_filter(small, sigma=(radius / factor, radius / factor, 0), mode="nearest", truncate=2.5)
    large = zoom(small, (factor, factor, 1), order=1, mode="nearest", grid_mode=True)
    return large[:height, :width]


def fill_masked_area(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Masked content "fill": replace the masked area with colours spread in from its surroundings.

    Layers of the unmasked pixels blurred from wide to narrow are composited over each other; each layer
    is normalised by its blurred coverage, so it holds the average colour of the nearby unmasked pixels.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    keep = 1.0 - np.asarray(mask.convert("L"), dtype=np.float64) / 255.0
    premultiplied = np.concatenate([rgb * keep[..., None], keep[..., None]], axis=2)
    result = np.zeros_like(rgb)
    coverage = np.zeros(keep.shape)
    for radius, repeats in FILL_LAYERS:
        layer = premultiplied
        if radius > 0:
            layer = _wide_blur(layer, radius)
        alpha = layer[..., 3]
        colour = layer[..., :3] / np.maximum(alpha, 1e-8)[..., None]
        for _ in range(repeats):
            # "over" compositing of the new layer onto what is there
            result = colour * alpha[..., None] + result * (1.0 - alpha[..., None])
            coverage = alpha + coverage * (1.0 - alpha)
    result = result / np.maximum(coverage, 1e-8)[..., None]
    filled = np.clip(np.round(result * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(filled, "RGB")


def overlay_mask(blurred_mask: Image.Image) -> Image.Image:
    """The mask used to paste input pixels back in "Whole picture" mode: the blurred mask doubled and
    clipped, so pixels at least half kept are restored exactly."""
    array = np.asarray(blurred_mask.convert("L"), dtype=np.float32) * 2.0
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "L")


def overlay_image(image: Image.Image, mask_for_overlay: Image.Image) -> Image.Image:
    """RGBA copy of `image` whose alpha keeps the unmasked pixels (alpha = 255 − mask)."""
    overlay = image.convert("RGB").convert("RGBA")
    overlay.putalpha(ImageChops.invert(mask_for_overlay.convert("L")))
    return overlay


def apply_overlay(result: Image.Image, overlay: Image.Image | None, paste_box: tuple[int, int, int, int] | None) -> Image.Image:
    """Put a generated image back: for "Only masked" scale it into `paste_box` (x, y, w, h) of a canvas of
    the overlay's size, then composite the overlay (the original unmasked pixels) on top."""
    if paste_box is not None and overlay is not None:
        x, y, width, height = paste_box
        canvas = Image.new("RGBA", overlay.size)
        canvas.paste(resize_image(CROP_AND_RESIZE, result.convert("RGB"), width, height), (x, y))
        result = canvas
    if overlay is None:
        return result.convert("RGB")
    composed = result.convert("RGBA")
    composed.alpha_composite(overlay)
    return composed.convert("RGB")


def latent_mask(mask: Image.Image, latent_width: int, latent_height: int, channels: int, round_mask: bool = True) -> torch.Tensor:
    """(channels, h, w) repaint weights at latent resolution: 1 = repaint, 0 = keep."""
    small = mask.convert("L").resize((latent_width, latent_height), Image.Resampling.BICUBIC)
    array = np.asarray(small, dtype=np.float32) / 255.0
    if round_mask:
        array = np.around(array)
    return torch.from_numpy(np.ascontiguousarray(array))[None].repeat(channels, 1, 1)


def mask_from_sketch(original: Image.Image, sketch: Image.Image, blur: float = 0.0) -> Image.Image:
    """Inpaint sketch: the pixels where the sketch differs from the original become the mask."""
    sketch = sketch.convert("RGB").resize(original.size) if sketch.size != original.size else sketch.convert("RGB")
    difference = ImageChops.difference(original.convert("RGB"), sketch).convert("L")
    mask = difference.point(lambda value: 255 if value > 0 else 0)
    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur > 0 else mask
