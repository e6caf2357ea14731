"""Prompt matrix and prompts-from-file: their pure logic, and real runs through the A1111 Script API."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import types
from pathlib import Path

import pytest
from PIL import Image

from modules.plugins.builtin.prompt_matrix_logic import PromptMatrixError, build_matrix, split_prompt
from modules.plugins.builtin.prompts_file_parser import PromptsFileError, apply_job, parse_line, parse_lines
from modules.plugins.builtin.xyz_grid_image import draw_labeled_grid

SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"


# ---- prompt matrix ---------------------------------------------------------------------------


def test_matrix_lists_every_combination_in_grid_order():
    matrix = build_matrix("a cat|in a hat|on a mat")
    assert matrix.prompts == ["a cat", "a cat, in a hat", "a cat, on a mat", "a cat, in a hat, on a mat"]
    assert (matrix.columns, matrix.rows) == (2, 2)
    assert [[(label.text, label.active) for label in column] for column in matrix.column_labels] == [
        [("in a hat", False)],
        [("in a hat", True)],
    ]
    assert [[(label.text, label.active) for label in row] for row in matrix.row_labels] == [[("on a mat", False)], [("on a mat", True)]]


def test_matrix_options_start_and_space_joiner():
    assert split_prompt(" a | b |  | c ") == ("a", ["b", "c"])
    matrix = build_matrix("red|fast|car", variable_parts_at_start=True, joiner="space")
    assert len(matrix.prompts) == 8
    assert matrix.prompts[0] == "" and matrix.prompts[7] == "red fast car"
    assert (matrix.columns, matrix.rows) == (4, 2)
    three = build_matrix("base|x|y|z")
    assert three.prompts[5] == "base, x, z"


def test_matrix_errors_name_the_field():
    with pytest.raises(PromptMatrixError, match="^prompt: separate the optional parts with |"):
        build_matrix("no bars here")
    with pytest.raises(PromptMatrixError, match="^joining character: expected one of comma, space"):
        build_matrix("a|b", joiner="tab")
    with pytest.raises(PromptMatrixError, match="too many images"):
        build_matrix("a|" + "|".join(str(index) for index in range(13)))


def test_matrix_grid_draws_labels_for_every_column():
    matrix = build_matrix("a cat|in a hat|on a mat")
    cells = [Image.new("RGB", (64, 64), (0, 0, 255)) for _ in matrix.prompts]
    grid = draw_labeled_grid(cells, matrix.column_labels, matrix.row_labels)
    assert grid.width > 128 and grid.height > 128
    pad_left, pad_top = grid.width - 128, grid.height - 128
    for column in range(2):
        band = grid.crop((pad_left + column * 64, 0, pad_left + (column + 1) * 64, pad_top)).convert("L")
        assert band.getextrema()[0] < 200


# ---- prompts file parsing --------------------------------------------------------------------


def test_plain_lines_and_option_lines():
    jobs = parse_lines(
        'a red car\n\n--prompt "a blue car" at night --steps 12 --seed 5 --negative_prompt blurry, ugly\n--cfg_scale 4.5 --sampler_name "DPM++ 2M" --tiling true --styles "warm, cold"'
    )
    assert jobs[0] == {"prompt": "a red car"}
    assert jobs[1] == {"prompt": "a blue car at night", "steps": 12, "seed": 5, "negative_prompt": "blurry, ugly"}
    assert jobs[2] == {"cfg_scale": 4.5, "sampler_name": "DPM++ 2M", "tiling": True, "styles": ["warm", "cold"]}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--prompt cat --stepz 5", r"^line 1: unknown option --stepz; valid options are: .*--steps"),
        ("--steps many", r"^line 1: --steps expects a whole number, got 'many'"),
        ("--cfg_scale high", r"^line 1: --cfg_scale expects a number, got 'high'"),
        ("--tiling maybe", r"^line 1: --tiling expects true or false"),
        ("--seed", r"^line 1: --seed needs a value"),
        ('--prompt "unclosed', r"^line 1: No closing quotation"),
        ("--steps 5 stray", r"^line 1: expected an option starting with --, got 'stray'"),
    ],
)
def test_bad_lines_name_the_option(line, message):
    with pytest.raises(PromptsFileError, match=message):
        parse_line(line)


def test_error_names_the_line_number():
    with pytest.raises(PromptsFileError, match="^line 3: unknown option --colour"):
        parse_lines("ok\n--steps 3\n--colour red")


def test_apply_job_positions_prompt_and_maps_special_options():
    job = types.SimpleNamespace(prompt="masterpiece", override_settings=None, sampler_name="Euler a")
    apply_job(job, {"prompt": "a cat", "steps": 3, "sd_model": "tiny-sd1", "sampler_index": 0}, prompt_position="end")
    assert job.prompt == "masterpiece a cat" and job.steps == 3
    assert job.override_settings == {"sd_model_checkpoint": "tiny-sd1"}
    from modules.sampling.samplers import SAMPLERS

    assert job.sampler_name == next(iter(SAMPLERS))
    job = types.SimpleNamespace(prompt="masterpiece")
    apply_job(job, {"prompt": "a cat"})
    assert job.prompt == "a cat masterpiece"
    with pytest.raises(PromptsFileError, match="--sampler_index: 999"):
        apply_job(types.SimpleNamespace(prompt=""), {"sampler_index": 999})


# ---- end to end through the A1111 Script API -------------------------------------------------


def _facades_ready():
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "process_images"):
        pytest.skip("modules.processing has no process_images yet")
    return processing


def load_script(filename):
    """Import a built-in script file the way the script loader does and return its Script instance."""
    spec = importlib.util.spec_from_file_location(f"builtin_script_{filename[:-3]}", SCRIPTS_DIR / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Script()


def _decode(image_b64):
    return Image.open(io.BytesIO(base64.b64decode(image_b64)))


def test_scripts_have_a1111_titles_and_ui_argument_counts():
    _facades_ready()
    import gradio as gr

    expected = {
        "xyz_grid.py": ("X/Y/Z plot", 18),
        "prompt_matrix.py": ("Prompt matrix", 5),
        "prompts_from_file.py": ("Prompts from file or textbox", 4),
    }
    for filename, (title, count) in expected.items():
        script = load_script(filename)
        assert script.title() == title and script.show(False)
        with gr.Blocks():
            assert len(script.ui(False)) == count


def test_prompts_from_file_runs_each_line_through_the_api(api_app):
    _facades_ready()
    from fastapi.testclient import TestClient

    lines = "--prompt first line --steps 1 --seed 101\n--prompt second line --steps 2 --seed 202 --negative_prompt dull"
    body = {
        "prompt": "",
        "width": 64,
        "height": 64,
        "steps": 3,
        "script_name": "prompts from file or textbox",
        "script_args": [False, False, "start", lines],
    }
    with TestClient(api_app) as client:
        response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    info = json.loads(data["info"])
    assert len(data["images"]) == 2
    assert all(_decode(image).size == (64, 64) for image in data["images"])
    first, second = info["infotexts"]
    assert first.startswith("first line\n") and "Steps: 1," in first and "Seed: 101," in first
    assert second.startswith("second line\nNegative prompt: dull\n") and "Steps: 2," in second and "Seed: 202," in second


def test_prompt_matrix_runs_every_combination_through_the_api(api_app):
    _facades_ready()
    from fastapi.testclient import TestClient

    body = {
        "prompt": "a cat|in a hat|on a mat",
        "width": 64,
        "height": 64,
        "steps": 1,
        "seed": 7,
        "script_name": "prompt matrix",
        "script_args": [False, False, "positive", "comma", 0],
    }
    with TestClient(api_app) as client:
        response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    info = json.loads(data["info"])
    assert len(data["images"]) == 5
    grid = _decode(data["images"][0])
    assert grid.width > 128 and grid.height > 128
    prompts = [text.split("\n")[0] for text in info["infotexts"][1:]]
    assert prompts == ["a cat", "a cat, in a hat", "a cat, on a mat", "a cat, in a hat, on a mat"]


def _processing_facade():
    processing = pytest.importorskip("modules.processing")
    if not hasattr(processing, "StableDiffusionProcessingTxt2Img"):
        pytest.skip("modules.processing has no StableDiffusionProcessingTxt2Img yet")
    return processing


def test_prompts_from_file_script_runs_each_line_through_the_facade(app_context):
    processing = _processing_facade()
    script = load_script("prompts_from_file.py")
    p = processing.StableDiffusionProcessingTxt2Img(prompt="base", width=64, height=64, steps=3, seed=9, do_not_save_samples=True)
    lines = "plain line\n--prompt second --steps 1 --seed 202 --negative_prompt dull --cfg_scale 3"
    result = script.run(p, False, False, "end", lines)
    assert len(result.images) == 2 and [image.size for image in result.images] == [(64, 64), (64, 64)]
    first, second = result.infotexts
    assert first.startswith("base plain line\n") and "Steps: 3," in first and "Seed: 9," in first
    assert second.startswith("base second\nNegative prompt: dull\n")
    assert "Steps: 1," in second and "Seed: 202," in second and "CFG scale: 3" in second
    assert result.all_prompts == ["base plain line", "base second"]


def test_prompts_from_file_iterates_seeds(app_context):
    processing = _processing_facade()
    script = load_script("prompts_from_file.py")
    p = processing.StableDiffusionProcessingTxt2Img(prompt="", width=64, height=64, steps=1, seed=40, do_not_save_samples=True)
    result = script.run(p, True, False, "start", "one\ntwo\nthree")
    assert result.all_seeds == [40, 41, 42]
    with pytest.raises(PromptsFileError, match="unknown option --colour"):
        script.run(p, False, False, "start", "--colour red")


def test_prompt_matrix_script_runs_every_combination_through_the_facade(app_context, tmp_path):
    processing = _processing_facade()
    script = load_script("prompt_matrix.py")
    p = processing.StableDiffusionProcessingTxt2Img(
        prompt="a cat|in a hat|on a mat", width=64, height=64, steps=1, seed=7, do_not_save_samples=True
    )
    p.outpath_grids = str(tmp_path)
    result = script.run(p, False, True, "positive", "comma", 4)
    grid, cells = result.images[0], result.images[1:]
    assert len(cells) == 4 and result.index_of_first_image == 1
    assert grid.width > 2 * 64 + 4 and grid.height > 2 * 64 + 4
    assert [text.split("\n")[0] for text in result.infotexts[1:]] == [
        "a cat",
        "a cat, in a hat",
        "a cat, on a mat",
        "a cat, in a hat, on a mat",
    ]
    assert [f"Seed: {7 + index}," in text for index, text in enumerate(result.infotexts[1:])] == [True] * 4
    assert len(list(tmp_path.rglob("*.png"))) == 1


def test_invalid_script_arguments_are_a_422_and_nothing_runs(api_app, app_context):
    _facades_ready()
    from fastapi.testclient import TestClient

    body = {
        "prompt": "x",
        "steps": 1,
        "width": 64,
        "height": 64,
        "script_name": "prompts from file or textbox",
        "script_args": [False, False, "start", "--prompt 'a' --steps many"],
    }
    saved_before = len(list(app_context.paths.outputs_dir.rglob("*.png")))
    with TestClient(api_app) as client:
        response = client.post("/sdapi/v1/txt2img", json=body)
        assert response.status_code == 422, response.text
        assert "--steps" in response.json()["detail"]
        assert client.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0
    assert len(list(app_context.paths.outputs_dir.rglob("*.png"))) == saved_before
