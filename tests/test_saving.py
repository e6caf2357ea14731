"""Metadata in PNG/JPEG/WebP, atomic writes, numbered saving and grids."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from modules.imaging.filenames import FilenameContext
from modules.imaging.grid import grid_layout, image_grid
from modules.imaging.metadata import encode_image, read_infotext
from modules.imaging.saving import atomic_write_bytes, atomic_write_text, save_image

INFOTEXT = (
    "a photo of a cat, (fluffy:1.2), ünïcode 猫\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, "
    "Seed: 1234567890, Size: 64x48, Model hash: 6ce0161689, "
    'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1'
)


def make_image(mode: str = "RGB", colour=(200, 30, 60), size=(64, 48)) -> Image.Image:
    if mode == "RGBA":
        colour = (*colour, 128)
    return Image.new(mode, size, colour)


def leftover_temporary_files(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir() if path.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    ("image_format", "pil_format"),
    [("png", "PNG"), ("jpg", "JPEG"), ("jpeg", "JPEG"), ("webp", "WEBP")],
)
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_metadata_write_then_read(image_format, pil_format, mode):
    data = encode_image(make_image(mode), image_format, INFOTEXT)
    loaded = Image.open(io.BytesIO(data))
    assert loaded.format == pil_format
    assert loaded.size == (64, 48)
    assert read_infotext(loaded) == INFOTEXT
    if pil_format == "JPEG":
        assert loaded.mode == "RGB"
        assert loaded.info["exif"].find(b"UNICODE\x00") > 0
    loaded.load()
    red = loaded.convert("RGB").getpixel((10, 10))[0]
    assert abs(red - 200) < 12


def test_png_uses_parameters_text_chunk():
    data = encode_image(make_image(), "png", "plain latin text")
    assert b"tEXtparameters\x00plain latin text" in data
    assert Image.open(io.BytesIO(data)).info["parameters"] == "plain latin text"


def test_no_metadata_reads_none():
    for image_format in ("png", "jpg", "webp"):
        data = encode_image(make_image(), image_format, None)
        assert read_infotext(Image.open(io.BytesIO(data))) is None


def test_very_long_jpeg_infotext_falls_back_to_comment():
    text = "word, " * 8000
    loaded = Image.open(io.BytesIO(encode_image(make_image(), "jpg", text)))
    assert read_infotext(loaded) == text


def test_gif_comment_is_read():
    buffer = io.BytesIO()
    make_image().convert("P").save(buffer, format="GIF", comment=b"gif infotext")
    assert read_infotext(Image.open(buffer)) == "gif infotext"


def test_lossless_webp_keeps_pixels():
    image = Image.linear_gradient("L").convert("RGB").resize((32, 32))
    data = encode_image(image, "webp", "x: 1", lossless=True)
    loaded = Image.open(io.BytesIO(data)).convert("RGB")
    assert loaded.tobytes() == image.tobytes()
    assert read_infotext(Image.open(io.BytesIO(data))) == "x: 1"


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "config.json"
    atomic_write_text(target, '{"a": 1}')
    atomic_write_bytes(target, b'{"a": 2}')
    assert target.read_bytes() == b'{"a": 2}'
    assert leftover_temporary_files(tmp_path) == []


def test_failed_atomic_write_keeps_old_file_and_removes_temporary(tmp_path: Path):
    target = tmp_path / "config.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert leftover_temporary_files(tmp_path) == []


def test_save_image_png_with_txt(tmp_path: Path):
    directory = tmp_path / "outputs" / "2024-05-06"
    context = FilenameContext(prompt="a cat", seed=1234)
    path = save_image(make_image(), directory, context=context, infotext=INFOTEXT, save_txt=True)
    assert path == directory / "00000-1234-a cat.png"
    assert read_infotext(Image.open(path)) == INFOTEXT
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == INFOTEXT
    assert leftover_temporary_files(directory) == []
    assert sorted(p.name for p in directory.iterdir()) == [
        "00000-1234-a cat.png",
        "00000-1234-a cat.txt",
    ]


def test_save_image_numbering_continues(tmp_path: Path):
    (tmp_path / "00041-9-old.png").write_bytes(b"")
    (tmp_path / "unrelated.png").write_bytes(b"")
    context = FilenameContext(prompt="dog", seed=7)
    first = save_image(make_image(), tmp_path, context=context, infotext=None)
    second = save_image(make_image(), tmp_path, context=context, pattern="[seed]", extension="jpg")
    assert first.name == "00042-7-dog.png"
    assert second.name == "00043-7.jpg"
    assert Image.open(second).format == "JPEG"


def test_save_without_number_overwrites(tmp_path: Path):
    context = FilenameContext(prompt="dog", seed=7)
    first = save_image(make_image(), tmp_path, context=context, add_number=False, infotext="one")
    second = save_image(make_image(), tmp_path, context=context, add_number=False, infotext="two")
    assert first == second == tmp_path / "7-dog.png"
    assert read_infotext(Image.open(second)) == "two"


def test_save_rgba_as_jpeg_and_webp(tmp_path: Path):
    context = FilenameContext(prompt="alpha", seed=1)
    for extension in ("jpg", "jpeg", "webp", "PNG"):
        path = save_image(
            make_image("RGBA"),
            tmp_path,
            context=context,
            extension=extension,
            infotext=INFOTEXT,
        )
        assert path.suffix == "." + extension.lower()
        assert read_infotext(Image.open(path)) == INFOTEXT


def test_unsupported_extension_names_samples_format(tmp_path: Path):
    with pytest.raises(ValueError, match="samples_format"):
        save_image(make_image(), tmp_path, context=FilenameContext(), extension="bmp")
    assert list(tmp_path.iterdir()) == []


def test_concurrent_saves_get_distinct_numbers(tmp_path: Path):
    barrier = threading.Barrier(4)

    def worker(index: int) -> list[Path]:
        barrier.wait()
        saved = []
        for repeat in range(5):
            context = FilenameContext(prompt="race", seed=index * 10 + repeat)
            image = make_image(size=(16, 16))
            saved.append(save_image(image, tmp_path, context=context))
        return saved

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(worker, range(4)))
    paths = [path for saved in results for path in saved]
    numbers = sorted(int(path.name.split("-")[0]) for path in paths)
    assert numbers == list(range(20))
    assert len({path.name for path in paths}) == 20
    assert all(path.exists() for path in paths)
    assert leftover_temporary_files(tmp_path) == []


@pytest.mark.parametrize(
    ("count", "rows", "columns"),
    [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 2, 2), (5, 2, 3), (6, 2, 3), (9, 3, 3)],
)
def test_grid_sizes(count, rows, columns):
    assert grid_layout(count) == (rows, columns)
    images = [make_image(colour=(index * 20, 100, 50), size=(8, 6)) for index in range(count)]
    grid = image_grid(images)
    assert grid.mode == "RGB"
    assert grid.size == (columns * 8, rows * 6)
    for index in range(count):
        x, y = index % columns * 8 + 4, index // columns * 6 + 3
        assert grid.getpixel((x, y)) == (index * 20, 100, 50)
    for index in range(count, rows * columns):
        x, y = index % columns * 8 + 4, index // columns * 6 + 3
        assert grid.getpixel((x, y)) == (0, 0, 0)


def test_grid_explicit_rows_and_prevent_empty_spots():
    assert grid_layout(6, rows=3) == (3, 2)
    assert grid_layout(2, rows=5) == (2, 1)
    assert grid_layout(3, prevent_empty_spots=True) == (1, 3)
    assert grid_layout(8, prevent_empty_spots=True) == (2, 4)
    grid = image_grid([make_image("RGBA", size=(4, 4))] * 4, rows=1)
    assert grid.size == (16, 4)
    with pytest.raises(ValueError):
        image_grid([])
