"""X/Y/Z plot: axis value parsing and checking, labelled grid drawing, and a real run through the Script API."""

from __future__ import annotations

import base64
import io
import json
import types

import pytest
from PIL import Image, ImageChops

from modules.plugins.builtin.xyz_axes import (
    AXIS_TYPES,
    AxisChoices,
    AxisError,
    axis_by_index,
    axis_labels,
    expand_decimal,
    expand_integer,
    find_axis,
    reorder_tokens,
    resolve_seeds,
    split_values,
)
from modules.plugins.builtin.xyz_grid_image import GridLabel, combine_grids, draw_labeled_grid


def _job(**fields):
    values = {"prompt": "a cat, in a hat", "negative_prompt": "blurry", "styles": [], "seed": 1, "override_settings": {}}
    values.update(fields)
    return types.SimpleNamespace(**values)


# ---- value parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-5 (+2)", [1, 3, 5]),
        ("1-10 (+3)", [1, 4, 7, 10]),
        ("10-1 (-3)", [10, 7, 4, 1]),
        ("5-1", [5, 4, 3, 2, 1]),
        ("1-10 [5]", [1, 3, 5, 7, 10]),
        ("7", [7]),
        ("-1", [-1]),
        (" 3 - 4 ", [3, 4]),
    ],
)
def test_integer_ranges(text, expected):
    assert expand_integer("Steps", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5-2 (+0.5)", [0.5, 1.0, 1.5, 2.0]),
        ("0-1 [5]", [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("1-3", [1.0, 2.0, 3.0]),
        ("7.5", [7.5]),
        ("1-2 (+0.3)", [1.0, 1.3, 1.6, 1.9]),
    ],
)
def test_decimal_ranges(text, expected):
    assert expand_decimal("CFG Scale", text) == pytest.approx(expected)


def test_comma_lists_mix_ranges_and_numbers():
    assert find_axis("Steps").parse("1-3, 10, 20-30 (+10)") == [1, 2, 3, 10, 20, 30]
    assert find_axis("CFG Scale").parse("3, 7.5, 9-10 [3]") == pytest.approx([3.0, 7.5, 9.0, 9.5, 10.0])


def test_quoted_values_keep_their_commas():
    assert split_values('a, "b, c", d') == ["a", "b, c", "d"]
    assert find_axis("Prompt S/R").parse('cat, "dog, puppy",  bird ') == ["cat", "dog, puppy", "bird"]


def test_bad_values_name_the_axis():
    with pytest.raises(AxisError, match=r"^Steps: 'abc' is not a whole number"):
        find_axis("Steps").parse("1, abc")
    with pytest.raises(AxisError, match=r"^CFG Scale: the step in '1-5 \(\+0\)' must not be 0"):
        find_axis("CFG Scale").parse("1-5 (+0)")
    with pytest.raises(AxisError, match="^Width: no values given"):
        find_axis("Width").parse("  ")
    with pytest.raises(AxisError, match="more than the limit"):
        find_axis("Seed").parse("1-1000000")


def test_names_are_checked_against_the_registries():
    choices = AxisChoices.from_registries(
        checkpoints=["model-a [0123456789]", "model-b [abcdef0123]"], vaes=["Automatic", "None", "vae.pt"], styles=["warm", "cold"]
    )
    assert find_axis("Sampler").parse("euler a, DPM++ 2M", choices) == ["Euler a", "DPM++ 2M"]
    assert find_axis("Schedule type").parse("karras, Automatic", choices) == ["Karras", "Automatic"]
    assert find_axis("Checkpoint name").parse("model-b", choices) == ["model-b [abcdef0123]"]
    assert find_axis("Styles").parse('"warm, cold", cold', choices) == ["warm, cold", "cold"]
    with pytest.raises(AxisError, match=r"^Sampler: unknown value 'Eulerish'; valid values are: .*Euler a"):
        find_axis("Sampler").parse("Euler, Eulerish", choices)
    with pytest.raises(AxisError, match=r"^VAE: unknown value 'other.pt'"):
        find_axis("VAE").parse("other.pt", choices)
    with pytest.raises(AxisError, match=r"^Styles: unknown style 'hot'"):
        find_axis("Styles").parse("warm, hot", choices)


def test_axis_lookup_by_label_and_dropdown_index():
    assert [axis.label for axis in AXIS_TYPES][:3] == ["Nothing", "Seed", "Var. seed"]
    assert "Denoising" not in axis_labels(False) and "Denoising" in axis_labels(True)
    assert axis_by_index(1).label == "Seed"
    assert axis_by_index("4").label == "Steps"
    assert axis_by_index("cfg scale").label == "CFG Scale"
    with pytest.raises(AxisError, match="axis type: index 99"):
        axis_by_index(99)
    with pytest.raises(AxisError, match="axis type: unknown axis 'Size'"):
        find_axis("Size")


# ---- applying values -------------------------------------------------------------------------


def test_fields_and_overrides_are_set_on_the_job():
    job = _job()
    find_axis("Steps").apply(job, 12, [12])
    find_axis("Var. strength").apply(job, 0.5, [0.5])
    find_axis("Checkpoint name").apply(job, "model-b [abcdef0123]", [])
    find_axis("VAE").apply(job, "vae.pt", [])
    find_axis("Clip skip").apply(job, 2, [2])
    find_axis("Styles").apply(job, "warm, cold", [])
    assert (job.steps, job.subseed_strength, job.styles) == (12, 0.5, ["warm", "cold"])
    assert job.override_settings == {"sd_model_checkpoint": "model-b [abcdef0123]", "sd_vae": "vae.pt", "CLIP_stop_at_last_layers": 2}


def test_prompt_search_and_replace():
    values = find_axis("Prompt S/R").parse("cat, dog, blurry")
    job = _job()
    find_axis("Prompt S/R").apply(job, "dog", values)
    assert job.prompt == "a dog, in a hat"
    job = _job()
    find_axis("Prompt S/R").apply(job, "sharp", ["blurry", "sharp"])
    assert job.negative_prompt == "sharp"
    with pytest.raises(AxisError, match="^Prompt S/R: 'horse' is found neither"):
        find_axis("Prompt S/R").apply(_job(), "x", ["horse", "x"])


def test_prompt_order_permutes_tokens_in_place():
    axis = find_axis("Prompt order")
    orders = axis.parse("cat, hat, red")
    assert len(orders) == 6 and orders[0] == ("cat", "hat", "red")
    assert reorder_tokens("a red cat in a hat", ("hat", "cat", "red")) == "a hat cat in a red"
    job = _job(prompt="cat, hat")
    axis.apply(job, ("hat", "cat"), orders)
    assert job.prompt == "hat, cat"
    assert axis.format_label(axis, ("hat", "cat")) == "hat, cat"


def test_labels_and_seed_resolution():
    assert find_axis("Steps").format_label(find_axis("Steps"), 12) == "Steps: 12"
    assert find_axis("Sampler").format_label(find_axis("Sampler"), "Euler") == "Euler"
    assert resolve_seeds([-1, 5, -1], keep_random=True, random_seed=lambda: 42) == [-1, 5, -1]
    assert resolve_seeds([-1, 5, -1], keep_random=False, random_seed=lambda: 42) == [42, 5, 42]


# ---- grid image ------------------------------------------------------------------------------


def _cells(count, size=(64, 48)):
    return [Image.new("RGB", size, (40 * index % 256, 90, 200)) for index in range(count)]


def _region_has_ink(image, box):
    region = image.crop(box).convert("L")
    return region.getextrema()[0] < 128


def test_labelled_grid_size_labels_and_margins():
    images = _cells(6)
    grid = draw_labeled_grid(images, ["Steps: 1", "Steps: 2", "Steps: 3"], ["Seed: 1", "Seed: 2"], margin=4)
    plain = draw_labeled_grid(images, ["Steps: 1", "Steps: 2", "Steps: 3"], ["Seed: 1", "Seed: 2"], margin=4, draw_legend=False)
    assert plain.size == (3 * 64 + 2 * 4, 2 * 48 + 4)
    pad_left, pad_top = grid.width - plain.width, grid.height - plain.height
    assert pad_left > 0 and pad_top > 0
    for column in range(3):  # each column label is drawn above its own column
        left = pad_left + column * (64 + 4)
        assert _region_has_ink(grid, (left, 0, left + 64, pad_top))
    for row in range(2):
        top = pad_top + row * (48 + 4)
        assert _region_has_ink(grid, (0, top, pad_left, top + 48))
    # cells sit where the layout says, margins stay white
    assert grid.getpixel((pad_left + 64 + 4 + 10, pad_top + 10)) == images[1].getpixel((0, 0))
    assert grid.getpixel((pad_left + 64 + 1, pad_top + 10)) == (255, 255, 255)
    assert grid.getpixel((pad_left + 10, pad_top + 48 + 4 + 10)) == images[3].getpixel((0, 0))


def test_empty_labels_leave_no_band_and_wrong_counts_fail():
    grid = draw_labeled_grid(_cells(2), ["a", "b"], [""])
    assert grid.width == 128 and grid.height > 48
    with pytest.raises(ValueError, match="images: a 2×2 grid needs 4 images, got 3"):
        draw_labeled_grid(_cells(3), ["a", "b"], ["c", "d"])


def test_inactive_labels_are_grey_and_differ_from_active():
    active = draw_labeled_grid(_cells(1), [[GridLabel("in a hat", True)]], [""])
    inactive = draw_labeled_grid(_cells(1), [[GridLabel("in a hat", False)]], [""])
    assert active.size == inactive.size
    assert ImageChops.difference(active, inactive).getbbox() is not None
    band = inactive.crop((0, 0, inactive.width, inactive.height - 48)).convert("L")
    assert band.getextrema()[0] > 100  # no black ink: struck-through grey only


def test_combined_grid_titles_each_sub_grid():
    subs = [draw_labeled_grid(_cells(2), ["x1", "x2"], ["y1"], margin=2) for _ in range(3)]
    combined = combine_grids(subs, ["Z: 1", "Z: 2", "Z: 3"], margin=6)
    assert combined.width == 3 * subs[0].width + 2 * 6
    title_height = combined.height - subs[0].height
    assert title_height > 0
    for index in range(3):
        left = index * (subs[0].width + 6)
        assert _region_has_ink(combined, (left, 0, left + subs[0].width, title_height))
        assert combined.crop((left, title_height, left + subs[0].width, combined.height)).tobytes() == subs[index].tobytes()
    untitled = combine_grids(subs, ["", "", ""])
    assert untitled.height == subs[0].height


# ---- end to end through the A1111 Script API -------------------------------------------------


def test_xyz_over_seed_and_steps_on_the_tiny_model(api_app):
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "process_images"):
        pytest.skip("modules.processing has no process_images yet")
    from fastapi.testclient import TestClient

    labels = axis_labels(False)
    script_args = [
        labels.index("Seed"), "11, 12", [], labels.index("Steps"), "1-3", [], 0, "", [],
        True, True, False, False, False, False, False, 0, False,
    ]  # fmt: skip
    body = {
        "prompt": "a tiny test",
        "width": 64,
        "height": 64,
        "steps": 5,
        "seed": 3,
        "script_name": "x/y/z plot",
        "script_args": script_args,
    }
    with TestClient(api_app) as client:
        response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    info = json.loads(data["info"])
    pictures = [Image.open(io.BytesIO(base64.b64decode(item))) for item in data["images"]]
    grid, cells = pictures[0], pictures[1:]
    assert len(cells) == 6 and all(cell.size == (64, 64) for cell in cells)
    plain_width, plain_height = 2 * 64, 3 * 64
    assert grid.width > plain_width and grid.height > plain_height  # two columns, three rows plus label bands
    pad_left, pad_top = grid.width - plain_width, grid.height - plain_height
    for column in range(2):
        assert _region_has_ink(grid, (pad_left + column * 64, 0, pad_left + (column + 1) * 64, pad_top))
    for row in range(3):
        assert _region_has_ink(grid, (0, pad_top + row * 64, pad_left, pad_top + (row + 1) * 64))
    assert grid.crop((pad_left + 64, pad_top + 128, pad_left + 128, pad_top + 192)).tobytes() == cells[5].convert("RGB").tobytes()
    cell_infotexts = info["infotexts"][1:]
    assert len(cell_infotexts) == 6
    for index, infotext in enumerate(cell_infotexts):
        row, column = divmod(index, 2)
        assert f"Seed: {11 + column}," in infotext
        assert f"Steps: {row + 1}," in infotext


def _load_script_module(filename):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / filename
    spec = importlib.util.spec_from_file_location(f"builtin_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_script(filename):
    return _load_script_module(filename).Script()


def test_xyz_script_runs_through_the_processing_facade(app_context, tmp_path):
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "StableDiffusionProcessingTxt2Img"):
        pytest.skip("modules.processing has no StableDiffusionProcessingTxt2Img yet")
    script = _load_script("xyz_grid.py")
    p = processing.StableDiffusionProcessingTxt2Img(prompt="a tiny test", width=64, height=64, steps=5, seed=3, do_not_save_samples=True)
    p.outpath_grids = str(tmp_path / "grids")
    labels = axis_labels(False)
    result = script.run(
        p, labels.index("Steps"), "1-2", [], labels.index("Seed"), "21", [], labels.index("CFG Scale"), "4, 6", [],
        True, False, True, False, False, False, False, 8, False,
    )  # fmt: skip
    combined, sub_grids = result.images[0], result.images[1:]
    assert len(sub_grids) == 2 and len(result.infotexts) == 3 + 4  # every cell's infotext is kept
    assert result.infotexts[3:] == result.cell_infotexts and result.infotexts[1:3] == [result.cell_infotexts[0], result.cell_infotexts[2]]
    assert sub_grids[0].width > 2 * 64 + 8 and sub_grids[0].height > 64  # two columns with a margin, one row
    assert combined.width == 2 * sub_grids[0].width + 8 and combined.height > sub_grids[0].height
    assert [("Steps: 1," in text, "Steps: 2," in text, "CFG scale: 6" in text) for text in result.cell_infotexts] == [
        (True, False, False), (False, True, False), (True, False, True), (False, True, True),
    ]  # fmt: skip
    assert all("Seed: 21," in text for text in result.cell_infotexts)
    saved = sorted((tmp_path / "grids").rglob("*.png"))
    assert len(saved) == 3 and all("xyz_grid" in path.name for path in saved)
    assert Image.open(saved[0]).size == combined.size


def test_xyz_script_refuses_an_unknown_sampler_before_generating(app_context):
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "StableDiffusionProcessingTxt2Img"):
        pytest.skip("modules.processing has no StableDiffusionProcessingTxt2Img yet")
    script = _load_script("xyz_grid.py")
    p = processing.StableDiffusionProcessingTxt2Img(prompt="x", width=64, height=64, steps=1, do_not_save_samples=True)
    labels = axis_labels(False)
    with pytest.raises(AxisError, match="^Sampler: unknown value 'Eulerish'"):
        script.run(
            p, labels.index("Sampler"), "Euler, Eulerish", [], 0, "", [], 0, "", [], True, False, False, False, False, False, False, 0, True
        )


def test_xyz_checkpoint_and_clip_skip_axes_use_per_cell_overrides(app_context):
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "StableDiffusionProcessingTxt2Img"):
        pytest.skip("modules.processing has no StableDiffusionProcessingTxt2Img yet")
    script = _load_script("xyz_grid.py")
    p = processing.StableDiffusionProcessingTxt2Img(
        prompt="x", width=64, height=64, steps=1, seed=5, do_not_save_samples=True, do_not_save_grid=True
    )
    labels = axis_labels(False)
    result = script.run(
        p, labels.index("Clip skip"), "1, 2", [], labels.index("Checkpoint name"), "", ["tiny-sd1"], 0, "", [],
        False, False, False, False, False, False, False, 0, False,
    )  # fmt: skip
    assert len(result.images) == 1 and result.images[0].size == (128, 64)  # no legend: a plain 2×1 grid
    assert result.infotexts[1:] == result.cell_infotexts and result.all_seeds == [5, 5, 5]
    assert "Clip skip" not in result.cell_infotexts[0] and "Clip skip: 2," in result.cell_infotexts[1]
    assert all("Model: tiny-sd1" in text for text in result.cell_infotexts)
    assert p.override_settings == {}  # the job's own settings stay untouched
    with pytest.raises(AxisError, match="^Checkpoint name: unknown value 'missing-model'"):
        script.run(
            p,
            labels.index("Checkpoint name"),
            "missing-model",
            [],
            0,
            "",
            [],
            0,
            "",
            [],
            True,
            False,
            False,
            False,
            False,
            False,
            False,
            0,
            True,
        )


def test_axis_type_change_switches_between_textbox_and_dropdown():
    pytest.importorskip("modules.scripts")
    update = _load_script_module("xyz_grid.py")._axis_widgets_updater(False)
    labels = axis_labels(False)
    textbox, dropdown = update(labels.index("Sampler"), False)
    assert textbox["visible"] is False and dropdown["visible"] is True and "Euler a" in dropdown["choices"]
    textbox, dropdown = update(labels.index("Sampler"), True)
    assert textbox["visible"] is True and dropdown["visible"] is False
    textbox, dropdown = update(labels.index("Steps"), False)
    assert textbox["visible"] is True and dropdown["choices"] == []


def test_xyz_prompt_search_miss_fails_before_any_generation(app_context, monkeypatch):
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "StableDiffusionProcessingTxt2Img"):
        pytest.skip("modules.processing has no StableDiffusionProcessingTxt2Img yet")
    module = _load_script_module("xyz_grid.py")
    calls = []
    monkeypatch.setattr(module, "process_images", lambda p: calls.append(p))
    p = processing.StableDiffusionProcessingTxt2Img(prompt="a cat", width=64, height=64, steps=1, do_not_save_samples=True)
    labels = axis_labels(False)
    with pytest.raises(AxisError, match="^Prompt S/R: 'dog' is found neither"):
        module.Script().run(
            p,
            labels.index("Steps"),
            "1-2",
            [],
            labels.index("Prompt S/R"),
            "dog, cow",
            [],
            0,
            "",
            [],
            True,
            False,
            False,
            False,
            False,
            False,
            False,
            0,
            False,
        )
    assert calls == [] and p.prompt == "a cat"
