"""Decoding and normalising uploaded images: odd modes, animation, EXIF rotation, sizes, bad data."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from modules.imaging.image_input import (
    ImageInputError,
    binary_mask,
    decode_base64_image,
    flatten,
    normalise_image,
    open_image_bytes,
)


def encoded(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def test_sixteen_bit_grey_is_scaled_to_eight_bits():
    ramp = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = open_image_bytes(encoded(Image.fromarray(ramp)))
    assert image.mode == "L"
    assert list(np.asarray(image)[0]) == [0, 128, 255]


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    image = open_image_bytes(encoded(cmyk, "JPEG", quality=95))
    assert image.mode == "RGB" and image.size == (16, 8)
    red, green, blue = np.asarray(image, dtype=np.int32).reshape(-1, 3).mean(axis=0)
    assert red > 200 and green < 60 and blue < 60


def test_palette_with_transparency_keeps_alpha_and_flattens_on_the_background():
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 1)
    palette.info["transparency"] = 0
    image = open_image_bytes(encoded(palette))
    assert image.mode == "RGBA"
    flat = np.asarray(flatten(image, "#00ff00"))
    assert tuple(flat[0, 0]) == (0, 0, 255)  # the opaque blue pixel
    assert tuple(flat[3, 3]) == (0, 255, 0)  # transparent red → background green


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = open_image_bytes(buffer.getvalue())
    assert image.mode == "RGB"
    red, _, blue = np.asarray(image, dtype=np.int32)[4, 4]
    assert red > 200 and blue < 50


def test_exif_rotated_jpeg_is_turned_upright():
    wide = Image.new("RGB", (40, 20), (255, 255, 255))
    wide.paste((0, 0, 0), (0, 0, 10, 20))  # black left edge as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turns it 90° clockwise
    image = open_image_bytes(encoded(wide, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (20, 40)
    pixels = np.asarray(image, dtype=np.int32)
    assert pixels[:8, :, :].mean() < 40  # the stored left edge is now at the top
    assert pixels[-8:, :, :].mean() > 200


def test_one_pixel_image_and_one_bit_image_are_accepted():
    assert open_image_bytes(encoded(Image.new("RGB", (1, 1), (1, 2, 3)))).size == (1, 1)
    assert normalise_image(Image.new("1", (3, 3), 1)).mode == "L"


def test_oversized_and_unreadable_images_are_refused_naming_the_field():
    with pytest.raises(ImageInputError, match="^mask: .*more than the limit"):
        open_image_bytes(encoded(Image.new("RGB", (100, 100))), "mask", max_pixels=5000)
    with pytest.raises(ImageInputError, match="^init_images: not a readable image"):
        open_image_bytes(b"definitely not an image", "init_images")
    with pytest.raises(ImageInputError, match="^init_images: could not decode"):
        open_image_bytes(encoded(Image.new("RGB", (64, 64)))[:60], "init_images")
    with pytest.raises(ImageInputError, match="expected a base64"):
        decode_base64_image("")


def test_base64_with_data_url_prefix():
    text = "data:image/png;base64," + base64.b64encode(encoded(Image.new("RGB", (5, 6), (9, 9, 9)))).decode()
    image = decode_base64_image(text)
    assert image.size == (5, 6) and image.getpixel((0, 0)) == (9, 9, 9)


def test_binary_mask_uses_alpha_when_transparent_else_grey():
    rgba = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 0, 200))
    rgba.putpixel((2, 0), (0, 0, 0, 100))
    assert list(np.asarray(binary_mask(rgba))[0]) == [0, 255, 0, 0]
    grey = Image.new("RGB", (2, 1), (255, 255, 255))
    assert list(np.asarray(binary_mask(grey))[0]) == [255, 255]
