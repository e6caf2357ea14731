"""Resize modes, mask blur, "Only masked" crop regions, masked-content fill and the final overlay."""

import numpy as np
import pytest
from PIL import Image

from modules.generation import masking
from modules.generation.resize import resize_image, resize_mode_index

RED, GREEN = (255, 0, 0), (0, 255, 0)


def left_red_quarter(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), GREEN)
    image.paste(RED, (0, 0, width // 4, height))
    return image


def red_fraction(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    pixels = np.asarray(image.crop(box), dtype=np.int32)
    return float(((pixels[..., 0] > 200) & (pixels[..., 1] < 60)).mean())


def test_just_resize_stretches_the_whole_image():
    result = resize_image(0, left_red_quarter(128, 64), 64, 64)
    assert result.size == (64, 64)
    assert red_fraction(result, (0, 0, 14, 64)) == 1.0
    assert red_fraction(result, (20, 0, 64, 64)) == 0.0


def test_crop_and_resize_covers_and_crops_the_overflow():
    result = resize_image("Crop and resize", left_red_quarter(128, 64), 64, 64)
    assert result.size == (64, 64)
    # the centre 64 columns of the 128-wide image: the red quarter (columns 0..31) is cropped away
    assert red_fraction(result, (0, 0, 64, 64)) == 0.0


def test_resize_and_fill_fits_and_fills_the_bands_from_the_edges():
    result = resize_image(2, left_red_quarter(128, 64), 64, 64)
    assert result.size == (64, 64)
    # the image is 64x32 in the middle; the top and bottom bands repeat its edge rows
    assert red_fraction(result, (0, 0, 14, 64)) == 1.0
    assert red_fraction(result, (20, 0, 64, 64)) == 0.0
    tall = resize_image(2, left_red_quarter(32, 64), 64, 64)  # 32 wide centred: bands left and right
    assert red_fraction(tall, (0, 0, 16, 64)) == 1.0  # the left band repeats the red first column
    assert red_fraction(tall, (50, 0, 64, 64)) == 0.0


def test_resize_mode_names_and_bad_values():
    names = ("Just resize", "crop and resize", "Resize and fill", "Just resize (latent upscale)")
    assert [resize_mode_index(name) for name in names] == [0, 1, 2, 3]
    assert resize_mode_index("2") == 2
    with pytest.raises(ValueError, match="^resize_mode"):
        resize_mode_index(7)


def test_blur_mask_spreads_symmetrically_and_keeps_mass():
    mask = Image.new("L", (41, 41))
    mask.paste(255, (15, 15, 26, 26))
    blurred = np.asarray(masking.blur_mask(mask, 4, 4), dtype=np.float64)
    # an 11-pixel square blurred with σ = 4: the centre keeps erf(5.5/(4·√2))² ≈ 69 %
    assert 160 < blurred[20, 20] < 200 and 0 < blurred[20, 12] < 128
    assert np.allclose(blurred, blurred[::-1, ::-1], atol=1)
    assert abs(blurred.sum() - np.asarray(mask, dtype=np.float64).sum()) / np.asarray(mask).sum() < 0.02
    assert masking.blur_mask(mask, 0, 0) is mask


def test_crop_region_is_padded_clipped_and_grown_to_the_processing_ratio():
    mask = Image.new("L", (200, 100))
    mask.paste(255, (50, 40, 70, 50))
    assert masking.crop_region(mask, 0) == (50, 40, 70, 50)
    assert masking.crop_region(mask, 45) == (5, 0, 115, 95)
    assert masking.crop_region(Image.new("L", (8, 8)), 10) is None
    x1, y1, x2, y2 = masking.expand_crop_region((50, 40, 70, 50), 64, 64, 200, 100)
    assert (x2 - x1) == (y2 - y1) == 20 and (x1, x2) == (50, 70)
    x1, y1, x2, y2 = masking.expand_crop_region((0, 0, 10, 90), 128, 64, 200, 100)  # near the left edge
    assert (x1, y1, x2, y2) == (0, 0, 180, 90)


def test_fill_replaces_the_masked_area_with_surrounding_colour():
    image = Image.new("RGB", (64, 64), (0, 0, 255))
    image.paste(RED, (24, 24, 40, 40))
    mask = Image.new("L", (64, 64))
    mask.paste(255, (20, 20, 44, 44))
    filled = np.asarray(masking.fill_masked_area(image, mask), dtype=np.int32)
    assert tuple(filled[32, 32]) == (0, 0, 255)
    assert tuple(filled[5, 5]) == (0, 0, 255)


def test_overlay_restores_unmasked_pixels_and_pastes_into_the_box():
    original = Image.new("RGB", (100, 60), (10, 20, 30))
    mask = Image.new("L", (100, 60))
    mask.paste(255, (40, 20, 60, 40))
    overlay = masking.overlay_image(original, mask)
    generated = Image.new("RGB", (64, 64), (200, 200, 200))
    result = np.asarray(masking.apply_overlay(generated, overlay, (40, 20, 20, 20)))
    assert result.shape == (60, 100, 3)
    assert tuple(result[5, 5]) == (10, 20, 30)
    assert tuple(result[30, 50]) == (200, 200, 200)
    whole = np.asarray(masking.apply_overlay(Image.new("RGB", (100, 60), (200, 0, 0)), overlay, None))
    assert tuple(whole[0, 0]) == (10, 20, 30) and tuple(whole[30, 50]) == (200, 0, 0)


def test_latent_mask_and_sketch_mask():
    mask = Image.new("L", (64, 64))
    mask.paste(255, (0, 0, 32, 64))
    small = masking.latent_mask(mask, 8, 8, 4)
    assert small.shape == (4, 8, 8)
    assert small[:, :, :4].min() == 1 and small[:, :, 4:].max() == 0
    original = Image.new("RGB", (16, 16), (0, 0, 0))
    sketch = original.copy()
    sketch.paste((255, 255, 0), (4, 4, 8, 8))
    drawn = np.asarray(masking.mask_from_sketch(original, sketch))
    assert drawn[5, 5] == 255 and drawn[12, 12] == 0
