"""Processing functions behind A1111's img2img scripts "Outpainting mk2", "Poor man's outpainting",
"Loopback" and "SD upscale". Each takes `generate(params) -> Processed` (e.g. `AppContext.run_img2img`,
or `processing_generator(p, process_images)` inside a script's run()) and an `Img2ImgParams` holding
the user's settings and init image.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from modules.generation.masking import blur_mask
from modules.generation.params import Img2ImgParams, ParameterError
from modules.generation.results import Processed

Generate = Callable[[Img2ImgParams], Processed]
DIRECTIONS = ("left", "right", "up", "down")


@dataclass
class ScriptResult:
    """Images and infotexts a script produced (the first infotext describes the first image)."""

    images: list[Image.Image] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    processed: list[Processed] = field(default_factory=list)


def processing_generator(p: Any, process: Callable[[Any], Processed], **changes: Any) -> Generate:
    """A `generate` for the functions below that runs each request through a copy of the processing
    object `p` (so its always-on scripts and outputs paths apply) with `process` (`process_images`).
    `changes` are set on every copy after the request's fields (e.g. `do_not_save_samples=True`)."""

    def generate(params: Img2ImgParams) -> Processed:
        cell = copy.copy(p)
        for item in dataclasses.fields(params):
            setattr(cell, item.name, getattr(params, item.name))
        for key, value in changes.items():
            setattr(cell, key, value)
        return process(cell)

    return generate


def _request(params: Img2ImgParams, **changes) -> Img2ImgParams:
    request = copy.copy(params)
    request.override_settings = dict(params.override_settings)
    for key, value in changes.items():
        setattr(request, key, value)
    request.validate()
    return request


def _first_image(processed: Processed) -> tuple[Image.Image, str]:
    index = processed.index_of_first_image
    return processed.images[index], processed.infotexts[index]


def _check_directions(directions: Sequence[str]) -> list[str]:
    chosen = [direction for direction in DIRECTIONS if direction in set(directions)]
    unknown = set(directions) - set(DIRECTIONS)
    if unknown or not chosen:
        raise ParameterError("direction", f"choose from {', '.join(DIRECTIONS)}, got {list(directions)!r}")
    return chosen


def _round8(value: int) -> int:
    return max(64, int(math.ceil(value / 8.0)) * 8)


# ---- tiles --------------------------------------------------------------------------------------
@dataclass
class Tile:
    x: int
    y: int
    image: Image.Image


def _positions(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(index * (length - tile) / (count - 1)) for index in range(count)] if count > 1 else [0]


def split_tiles(image: Image.Image, tile_width: int, tile_height: int, overlap: int) -> list[Tile]:
    """Tiles of `tile_width` × `tile_height` covering the image, neighbours overlapping by at least `overlap`."""
    if overlap >= min(tile_width, tile_height):
        raise ParameterError("overlap", f"must be smaller than the tile size, got {overlap}")
    return [
        Tile(x, y, image.crop((x, y, x + tile_width, y + tile_height)))
        for y in _positions(image.height, tile_height, overlap)
        for x in _positions(image.width, tile_width, overlap)
    ]


def _ramp(size: int, overlap: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    weights = np.ones(size, dtype=np.float64)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
        if fade_start:
            weights[:overlap] = np.minimum(weights[:overlap], ramp)
        if fade_end:
            weights[-overlap:] = np.minimum(weights[-overlap:], ramp[::-1])
    return weights


def combine_tiles(tiles: list[Tile], size: tuple[int, int], overlap: int) -> Image.Image:
    """Blend tiles back into one image of `size`; overlaps fade linearly from one tile to the next."""
    width, height = size
    total = np.zeros((height, width, 3))
    weight = np.zeros((height, width, 1))
    xs = sorted({tile.x for tile in tiles})
    ys = sorted({tile.y for tile in tiles})
    for tile in tiles:
        array = np.asarray(tile.image.convert("RGB"), dtype=np.float64)
        tile_height, tile_width = array.shape[:2]
        horizontal = _ramp(tile_width, overlap, tile.x != xs[0], tile.x != xs[-1])
        vertical = _ramp(tile_height, overlap, tile.y != ys[0], tile.y != ys[-1])
        local = (vertical[:, None] * horizontal[None, :])[..., None]
        visible_height, visible_width = min(tile_height, height - tile.y), min(tile_width, width - tile.x)
        region = (slice(tile.y, tile.y + visible_height), slice(tile.x, tile.x + visible_width))
        total[region] += (array * local)[:visible_height, :visible_width]
        weight[region] += local[:visible_height, :visible_width]
    result = total / np.maximum(weight, 1e-8)
    return Image.fromarray(np.clip(np.round(result), 0, 255).astype(np.uint8), "RGB")


# ---- SD upscale ---------------------------------------------------------------------------------
def sd_upscale(
    generate: Generate,
    params: Img2ImgParams,
    scale: float = 2.0,
    overlap: int = 64,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> ScriptResult:
    """Upscale the init image by `scale` (with `resample`), then img2img it tile by tile at the processing size
    and blend the tiles back; one result per batch count, each seed + iteration."""
    if not 1.0 <= scale <= 8.0:
        raise ParameterError("scale_factor", f"must be between 1 and 8, got {scale}")
    source = params.init_images[0].convert("RGB")
    upscaled = source.resize((round(source.width * scale), round(source.height * scale)), resample)
    tiles = split_tiles(upscaled, params.width, params.height, overlap)
    result = ScriptResult()
    seed = params.seed if params.seed >= 0 else int(np.random.randint(0, 2**32 - 1))
    for iteration in range(params.n_iter):
        finished: list[Tile] = []
        infotext = ""
        for start in range(0, len(tiles), params.batch_size):
            chunk = tiles[start : start + params.batch_size]
            request = _request(
                params, init_images=[tile.image for tile in chunk], batch_size=len(chunk), n_iter=1, seed=seed + iteration, mask=None
            )
            processed = generate(request)
            result.processed.append(processed)
            outputs = processed.images[processed.index_of_first_image :]
            finished.extend(Tile(tile.x, tile.y, image) for tile, image in zip(chunk, outputs, strict=False))
            infotext = infotext or processed.infotexts[processed.index_of_first_image]
        result.images.append(combine_tiles(finished, upscaled.size, overlap))
        result.infotexts.append(infotext)
    return result


# ---- loopback -----------------------------------------------------------------------------------
DENOISING_CURVES = ("Aggressive", "Linear", "Lazy")


def denoising_schedule(initial: float, final: float, loops: int, curve: str = "Linear") -> list[float]:
    """The denoising strength of each of `loops` loops, going from `initial` to `final` along `curve`:
    "Linear" in equal steps, "Aggressive" fast at first (sine), "Lazy" slow at first (1 − cosine)."""
    if curve not in DENOISING_CURVES:
        raise ParameterError("denoising_curve", f"choose from {', '.join(DENOISING_CURVES)}, got {curve!r}")
    if loops == 1:
        return [initial]
    strengths = []
    for loop in range(loops):
        progress = loop / (loops - 1)
        if curve == "Aggressive":
            progress = math.sin(progress * math.pi / 2)
        elif curve == "Lazy":
            progress = 1 - math.cos(progress * math.pi / 2)
        strengths.append(initial + (final - initial) * progress)
    return strengths


def loopback(
    generate: Generate,
    params: Img2ImgParams,
    loops: int = 4,
    strength_change_factor: float = 1.0,
    strengths: Sequence[float] | None = None,
) -> ScriptResult:
    """Feed each result back as the next init image `loops` times, multiplying the denoising strength by
    `strength_change_factor` after every loop (clamped to 0..1), or using `strengths[loop]` when given
    (see `denoising_schedule`); the seed goes up by one per loop."""
    if not 1 <= loops <= 64:
        raise ParameterError("loops", f"must be between 1 and 64, got {loops}")
    if strengths is not None and len(strengths) != loops:
        raise ParameterError("loops", f"expected {loops} denoising strengths, got {len(strengths)}")
    result = ScriptResult()
    image = params.init_images[0]
    strength = params.denoising_strength
    seed = params.seed if params.seed >= 0 else int(np.random.randint(0, 2**32 - 1))
    for loop in range(loops):
        if strengths is not None:
            strength = min(max(float(strengths[loop]), 0.0), 1.0)
        request = _request(params, init_images=[image], batch_size=1, n_iter=1, seed=seed + loop, denoising_strength=strength)
        processed = generate(request)
        result.processed.append(processed)
        image, infotext = _first_image(processed)
        result.images.append(image)
        result.infotexts.append(infotext)
        strength = min(max(strength * strength_change_factor, 0.0), 1.0)
    return result


# ---- poor man's outpainting ---------------------------------------------------------------------
def expand_canvas(
    image: Image.Image, pixels: int, directions: Sequence[str], mask_blur: int
) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """(expanded image, mask, offset of the original): new borders are white in the mask, and the mask
    reaches `2 · mask_blur` pixels into the original so the seam is repainted too."""
    chosen = _check_directions(directions)
    left = pixels if "left" in chosen else 0
    right = pixels if "right" in chosen else 0
    up = pixels if "up" in chosen else 0
    down = pixels if "down" in chosen else 0
    width, height = image.width + left + right, image.height + up + down
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image.convert("RGB"), (left, up))
    # edges of the original stretched into the new area, so "original" masked content has colours to start from
    if left:
        canvas.paste(image.crop((0, 0, 1, image.height)).resize((left, image.height)), (0, up))
    if right:
        canvas.paste(image.crop((image.width - 1, 0, image.width, image.height)).resize((right, image.height)), (left + image.width, up))
    if up:
        canvas.paste(canvas.crop((0, up, width, up + 1)).resize((width, up)), (0, 0))
    if down:
        canvas.paste(canvas.crop((0, up + image.height - 1, width, up + image.height)).resize((width, down)), (0, up + image.height))
    mask = Image.new("L", (width, height), 255)
    seam = mask_blur * 2
    ImageDraw.Draw(mask).rectangle(
        (
            left + seam if left else 0,
            up + seam if up else 0,
            (width - right - seam if right else width) - 1,
            (height - down - seam if down else height) - 1,
        ),
        fill=0,
    )
    return canvas, mask, (left, up)


def poor_mans_outpainting(
    generate: Generate,
    params: Img2ImgParams,
    pixels: int = 128,
    directions: Sequence[str] = DIRECTIONS,
    mask_blur: int = 4,
    inpainting_fill: int = 1,
) -> ScriptResult:
    """Expand the canvas by `pixels` in `directions` and inpaint the new border at the expanded size
    (rounded up to a multiple of 8); the original area is restored by the final overlay."""
    if not 8 <= pixels <= 256:
        raise ParameterError("pixels", f"must be between 8 and 256, got {pixels}")
    canvas, mask, _ = expand_canvas(params.init_images[0], pixels, directions, mask_blur)
    request = _request(
        params,
        init_images=[canvas],
        mask=mask,
        mask_blur=mask_blur,
        inpainting_fill=inpainting_fill,
        inpaint_full_res=False,
        resize_mode=0,
        width=_round8(canvas.width),
        height=_round8(canvas.height),
    )
    processed = generate(request)
    outputs = processed.images[processed.index_of_first_image :]
    texts = processed.infotexts[processed.index_of_first_image :]
    images = [image.resize(canvas.size, Image.Resampling.LANCZOS) if image.size != canvas.size else image for image in outputs]
    return ScriptResult(images=images, infotexts=texts, processed=[processed])


# ---- outpainting mk2 ----------------------------------------------------------------------------
def matched_noise(image: Image.Image, region_mask: Image.Image, seed: int, smoothness: float = 2.0) -> Image.Image:
    """Fill the white area of `region_mask` with smooth noise whose colour mean and spread per channel
    match the rest of the image (the start of "Outpainting mk2")."""
    array = np.asarray(image.convert("RGB"), dtype=np.float64)
    known = np.asarray(region_mask.convert("L")) < 128
    if not known.any():
        return image.convert("RGB")
    mean = array[known].mean(axis=0)
    spread = array[known].std(axis=0) + 1.0
    generator = np.random.default_rng(seed)
    noise = generator.standard_normal(array.shape)
    if smoothness > 0:
        from scipy.ndimage import gaussian_filter

        noise = gaussian_filter(noise, sigma=(smoothness, smoothness, 0))
        noise /= noise.std() + 1e-8
    filled = np.where(known[..., None], array, np.clip(mean + noise * spread, 0, 255))
    return Image.fromarray(np.round(filled).astype(np.uint8), "RGB")


def outpainting_mk2(
    generate: Generate,
    params: Img2ImgParams,
    pixels: int = 128,
    directions: Sequence[str] = DIRECTIONS,
    mask_blur: int = 8,
    noise_q: float = 1.0,
    color_variation: float = 0.05,
) -> ScriptResult:
    """Expand one direction at a time: the new strip is filled with colour-matched noise, then inpainted
    with a mask that fades (`mask_blur`) into the original; each pass starts from the previous result.
    `noise_q` sets the noise smoothness and `color_variation` blends the noise towards the mean colour."""
    if not 8 <= pixels <= 256:
        raise ParameterError("pixels", f"must be between 8 and 256, got {pixels}")
    chosen = _check_directions(directions)
    image = params.init_images[0].convert("RGB")
    infotext = ""
    processed_all = []
    for step, direction in enumerate(chosen):
        canvas, mask, _ = expand_canvas(image, pixels, [direction], 0)
        new_area = mask
        noisy = matched_noise(canvas, new_area, (params.seed if params.seed >= 0 else 0) + step, smoothness=2.0 * noise_q)
        if color_variation < 1.0:
            base = np.asarray(canvas, dtype=np.float64)
            mixed = np.asarray(noisy, dtype=np.float64) * (1 - color_variation) + base * color_variation
            noisy = Image.fromarray(np.round(mixed).astype(np.uint8))
        soft_mask = blur_mask(new_area, mask_blur, mask_blur) if mask_blur else new_area
        soft_mask = Image.fromarray(np.maximum(np.asarray(soft_mask), np.asarray(new_area)))
        request = _request(
            params,
            init_images=[noisy],
            mask=soft_mask,
            mask_blur=0,
            inpainting_fill=1,
            inpaint_full_res=False,
            resize_mode=0,
            batch_size=1,
            n_iter=1,
            width=_round8(canvas.width),
            height=_round8(canvas.height),
        )
        processed = generate(request)
        processed_all.append(processed)
        image, infotext = _first_image(processed)
        if image.size != canvas.size:
            image = image.resize(canvas.size, Image.Resampling.LANCZOS)
    return ScriptResult(images=[image], infotexts=[infotext], processed=processed_all)
