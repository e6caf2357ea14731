"""Outpainting mk2, poor man's outpainting, loopback and SD upscale on the tiny SD1 checkpoint."""

import numpy as np
import pytest
from PIL import Image

from modules.generation import outpainting
from modules.generation.params import Img2ImgParams, ParameterError


def gradient(width: int, height: int) -> Image.Image:
    rows, columns = np.mgrid[0:height, 0:width]
    array = np.stack([columns * 255 // width, rows * 255 // height, np.full((height, width), 60)], axis=2)
    return Image.fromarray(array.astype(np.uint8))


def params(image: Image.Image, **fields) -> Img2ImgParams:
    values = dict(
        prompt="a field", steps=3, width=64, height=64, seed=3, sampler_name="Euler", denoising_strength=0.6, do_not_save_samples=True
    )
    values.update(fields)
    return Img2ImgParams.from_request(dict(values, init_images=[image]))


def test_tiles_split_and_combine_back_to_the_same_image():
    image = gradient(150, 100)
    tiles = outpainting.split_tiles(image, 64, 64, 16)
    assert {tile.x for tile in tiles} == {0, 43, 86} and {tile.y for tile in tiles} == {0, 36}
    combined = outpainting.combine_tiles(tiles, image.size, 16)
    assert np.abs(np.asarray(combined, dtype=int) - np.asarray(image, dtype=int)).max() <= 1


def test_sd_upscale_doubles_the_size(app_context):
    result = outpainting.sd_upscale(app_context.run_img2img, params(gradient(48, 40)), scale=2.0, overlap=16)
    assert result.images[0].size == (96, 80)
    assert "Denoising strength: 0.6" in result.infotexts[0]
    assert len(result.processed) == 4  # 2×2 tiles of 64 with overlap 16, batch size 1


def test_loopback_feeds_results_back_and_changes_strength(app_context):
    seen = []

    def generate(request):
        seen.append((request.denoising_strength, request.seed, request.init_images[0]))
        return app_context.run_img2img(request)

    result = outpainting.loopback(generate, params(gradient(64, 64)), loops=3, strength_change_factor=0.5)
    assert [strength for strength, _, _ in seen] == [0.6, 0.3, 0.15]
    assert [seed for _, seed, _ in seen] == [3, 4, 5]
    assert seen[1][2] is result.images[0] and len(result.images) == 3


def test_poor_mans_outpainting_expands_and_keeps_the_original(app_context):
    image = gradient(64, 64)
    result = outpainting.poor_mans_outpainting(app_context.run_img2img, params(image), pixels=16, directions=["left", "down"], mask_blur=2)
    output = np.asarray(result.images[0])
    assert result.images[0].size == (80, 80)
    # the original sits at (16, 0); away from the seam (2·blur + blur kernel) its pixels are unchanged
    assert np.array_equal(output[0:50, 30:80], np.asarray(image)[0:50, 14:64])
    with pytest.raises(ParameterError, match="^direction"):
        outpainting.poor_mans_outpainting(app_context.run_img2img, params(image), directions=["sideways"])


def test_outpainting_mk2_expands_each_direction(app_context):
    image = gradient(64, 64)
    result = outpainting.outpainting_mk2(app_context.run_img2img, params(image), pixels=16, directions=["right", "up"], mask_blur=4)
    assert result.images[0].size == (80, 80)
    assert len(result.processed) == 2
    canvas, mask, offset = outpainting.expand_canvas(image, 16, ["right"], 0)
    noisy = np.asarray(outpainting.matched_noise(canvas, mask, seed=1), dtype=float)
    assert offset == (0, 0) and np.array_equal(noisy[:, :64], np.asarray(image, dtype=float))
    assert noisy[:, 64:].std() > 5  # the new strip is noise, not a flat colour
