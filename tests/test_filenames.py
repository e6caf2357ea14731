"""Filename patterns, sanitising, numbering and dated output directories."""

import datetime
from pathlib import Path

import pytest

from modules.imaging.filenames import (
    FilenameContext,
    apply_pattern,
    build_filename,
    next_sequence_number,
    output_directory,
    sanitize_filename_part,
)

MOMENT = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)


def make_context(**overrides) -> FilenameContext:
    values = {
        "prompt": "a cat, sitting on a mat",
        "negative_prompt": "blurry dog",
        "seed": 1234,
        "all_seeds": (1234, 1235, 1236),
        "steps": 20,
        "cfg_scale": 7.5,
        "width": 512,
        "height": 768,
        "sampler_name": "DPM++ 2M",
        "scheduler": "Karras",
        "model_name": "v1-5 pruned",
        "model_hash": "6ce0161689",
        "styles": ("Cinematic", "None", "Moody"),
        "job_timestamp": "20240506070809",
        "now": MOMENT,
    }
    values.update(overrides)
    return FilenameContext(**values)


def test_default_pattern_and_number():
    context = make_context()
    assert build_filename(context, "", "png", 12) == "00012-1234-a cat, sitting on a mat.png"
    assert build_filename(context, "", "png", None) == "1234-a cat, sitting on a mat.png"
    assert build_filename(context, "[seed]", "jpg", 3, basename="grid") == "grid-0003-1234.jpg"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[seed]", "1234"),
        ("[seed_first]-[seed_last]", "1234-1236"),
        ("[steps]-[cfg]-[width]x[height]", "20-7.5-512x768"),
        ("[styles]", "Cinematic, Moody"),
        ("[sampler]", "DPM++ 2M"),
        ("[scheduler]", "Karras"),
        ("[model_hash]", "6ce0161689"),
        ("[model_name]", "v1-5 pruned"),
        ("[prompt]", "a_cat,_sitting_on_a_mat"),
        ("[prompt_spaces]", "a cat, sitting on a mat"),
        ("[prompt_no_styles]", "a cat, sitting on a mat"),
        ("[prompt_words]", "a cat sitting on a mat"),
        ("[prompt_hash]", "1765faea"),
        ("[prompt_hash<4>]", "1765"),
        ("[negative_prompt]", "blurry_dog"),
        ("[date]", "2024-05-06"),
        ("[datetime]", "20240506070809"),
        ("[datetime<%Y_%m>]", "2024_05"),
        ("[DATETIME<%H-%M><Etc/GMT-2>]", "09-08"),
        ("[job_timestamp]", "20240506070809"),
        ("[hasprompt<cat><dog|nodog>]", "catnodog"),
        ("[unknown_tag]-[seed]", "[unknown_tag]-1234"),
        ("x[none]-[seed]", "-1234"),
        ("[seed]-[batch_number]", "1234"),
        ("[seed]-[generation_number]", "1234"),
        ("literal", "literal"),
    ],
)
def test_tags(pattern, expected):
    assert apply_pattern(pattern, make_context()) == expected


def test_batch_and_generation_numbers():
    context = make_context(batch_size=4, batch_index=2, iteration=1, n_iter=3)
    assert apply_pattern("[batch_number]-[generation_number]", context) == "3-7"
    assert apply_pattern("[batch_size]", context) == "4"


def test_prompt_words_limit_and_empty():
    context = make_context(prompt="one, two (three) four five six seven eight nine ten")
    assert apply_pattern("[prompt_words]", context) == "one two three four five six seven eight"
    assert apply_pattern("[prompt_words]", make_context(prompt=" ,,; ")) == "empty"
    assert apply_pattern("[prompt_words]", make_context(max_prompt_words=2)) == "a cat"


def test_sanitize_filename_part_like_a1111():
    assert sanitize_filename_part('a<b>c:d"e|f?g*h') == "a_b_c_d_e_f_g_h"
    assert sanitize_filename_part("  lead and trail. . ", replace_spaces=False) == ("lead and trail")
    assert sanitize_filename_part("x\ny\tz\x00") == "x_y_z_"
    assert len(sanitize_filename_part("w" * 500)) == 128
    assert sanitize_filename_part(None) == ""


def test_path_traversal_in_prompt_cannot_escape(tmp_path: Path):
    for prompt in ["../../etc/passwd", "/etc/passwd", "..", "..\\..\\windows", "."]:
        context = make_context(prompt=prompt)
        for pattern in [
            "[prompt]",
            "[prompt_spaces]",
            "[prompt_words]",
            "../[prompt]/..",
        ]:
            for number in (None, 7):
                name = build_filename(context, pattern, "png", number)
                assert "/" not in name and "\\" not in name
                assert not name.startswith(".")
                assert name not in {"", ".", "..", ".png"}
                assert (tmp_path / name).resolve().parent == tmp_path.resolve()
    name = build_filename(make_context(prompt="../../etc/passwd"), "[prompt_spaces]", "png")
    assert name == "_.._etc_passwd.png"


def test_invalid_characters_are_replaced():
    name = build_filename(make_context(prompt='<>:"|?*'), "[prompt_spaces]", "png", 1)
    assert name == "00001-_______.png"
    name = build_filename(make_context(), 'lit<>:"|?*[seed]', "png", 1)
    assert name == "00001-lit_______1234.png"


def test_very_long_prompts_are_limited(tmp_path: Path):
    context = make_context(prompt="word " * 2000, negative_prompt="neg " * 2000)
    pattern = "[prompt]-[prompt_spaces]-[negative_prompt]-[prompt_no_styles]"
    name = build_filename(context, pattern, "webp", 99999)
    assert len(name.encode("utf-8")) <= 255
    assert name.endswith(".webp") and name.startswith("99999-word_word")
    (tmp_path / name).write_bytes(b"ok")
    (tmp_path / name).with_suffix(".txt").write_bytes(b"ok")

    wide = make_context(prompt="猫" * 3000)
    name = build_filename(wide, "[prompt_spaces]-[prompt_spaces]", "png", 1)
    assert len(name.encode("utf-8")) <= 255
    assert name.startswith("00001-猫猫")
    (tmp_path / name).write_bytes(b"ok")
    assert apply_pattern("[prompt_spaces]", wide) == "猫" * 128


def test_empty_prompt_and_empty_name():
    context = make_context(prompt="", seed=5)
    assert build_filename(context, "", "png", 3) == "00003-5-.png"
    assert build_filename(context, "[prompt]", "png", 3) == "00003.png"
    assert build_filename(context, "[prompt]", "png", None) == "image.png"
    assert build_filename(make_context(prompt="con"), "[prompt]", "png") == "con_.png"


def test_numbering_continues_after_existing_files(tmp_path: Path):
    assert next_sequence_number(tmp_path / "missing") == 0
    assert next_sequence_number(tmp_path) == 0
    for name in [
        "00007-1-cat.png",
        "00003.png",
        "00005-2-dog.jpg",
        "notes.txt",
        "12abc-x.png",
        "-00099-x.png",
        "grid-0042-1.png",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert next_sequence_number(tmp_path) == 8
    assert next_sequence_number(tmp_path, "grid") == 43


def test_output_directory_is_dated_and_contained(tmp_path: Path):
    context = make_context()
    assert output_directory(tmp_path, context) == tmp_path / "2024-05-06"
    nested = output_directory(tmp_path, context, "[date]/[sampler]")
    assert nested == tmp_path / "2024-05-06" / "DPM++ 2M"
    hostile = output_directory(tmp_path, make_context(prompt="../../x"), "../[prompt]/..")
    assert hostile.resolve().is_relative_to(tmp_path.resolve())
    assert hostile == tmp_path / "_.._x"
    assert output_directory(tmp_path, context, "") == tmp_path
