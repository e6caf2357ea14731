"""Infotext: writing, parsing, round trips, A1111 samples and hostile input."""

import random
import re
import time

import pytest

from modules.imaging.infotext import (
    PARAMETER_ORDER,
    create_infotext,
    find_parameters,
    order_parameters,
    parse_infotext,
    split_infotext,
)

# Sample infotext strings as A1111 writes them (see the format reference shared with the project).
SAMPLE_CAT = (
    "a photo of a cat, (fluffy:1.2)\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, "
    "Seed: 1234567890, Size: 512x512, Model hash: 6ce0161689, "
    "Model: v1-5-pruned-emaonly, Version: v1.10.1"
)
SAMPLE_LORA = (
    "masterpiece, 1girl, <lora:add_detail:0.8>\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 28, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6.5, "
    "Seed: 42, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    "Denoising strength: 0.7, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, "
    'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1'
)
SAMPLE_CASTLE = (
    "a castle on a hill\n"
    "Steps: 30, Sampler: DPM++ SDE, Schedule type: Karras, CFG scale: 5, Seed: 3, "
    "Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
    "Variation seed: 99, Variation seed strength: 0.25, RNG: CPU, Version: v1.10.1"
)
SAMPLES = [SAMPLE_CAT, SAMPLE_LORA, SAMPLE_CASTLE]

# A1111's parameter pattern, used as the oracle for the linear scanner.
A1111_PARAMETER = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def test_sample_cat_fields():
    parsed = parse_infotext(SAMPLE_CAT)
    assert parsed["Prompt"] == "a photo of a cat, (fluffy:1.2)"
    assert parsed["Negative prompt"] == "blurry"
    assert parsed["Steps"] == "20"
    assert parsed["Sampler"] == "DPM++ 2M"
    assert parsed["Schedule type"] == "Karras"
    assert parsed["CFG scale"] == "7"
    assert parsed["Seed"] == "1234567890"
    assert parsed["Size"] == "512x512"
    assert (parsed["Size-1"], parsed["Size-2"]) == ("512", "512")
    assert parsed["Model hash"] == "6ce0161689"
    assert parsed["Model"] == "v1-5-pruned-emaonly"
    assert parsed["Version"] == "v1.10.1"
    assert parsed["Clip skip"] == "1"
    assert parsed["RNG"] == "GPU"


def test_sample_lora_fields():
    parsed = parse_infotext(SAMPLE_LORA)
    assert parsed["Prompt"] == "masterpiece, 1girl, <lora:add_detail:0.8>"
    assert parsed["Negative prompt"] == "lowres, bad anatomy"
    assert parsed["Sampler"] == "Euler a"
    assert parsed["Schedule type"] == "Automatic"
    assert parsed["CFG scale"] == "6.5"
    assert (parsed["Size-1"], parsed["Size-2"]) == ("512", "768")
    assert parsed["Denoising strength"] == "0.7"
    assert parsed["Clip skip"] == "2"
    assert parsed["Hires upscale"] == "2"
    assert parsed["Hires upscaler"] == "Latent"
    assert parsed["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert parsed["Hires sampler"] == "Use same sampler"


def test_sample_castle_fields_and_defaults():
    parsed = parse_infotext(SAMPLE_CASTLE)
    assert parsed["Prompt"] == "a castle on a hill"
    assert parsed["Negative prompt"] == ""
    assert parsed["Variation seed"] == "99"
    assert parsed["Variation seed strength"] == "0.25"
    assert parsed["RNG"] == "CPU"
    assert parsed["Schedule type"] == "Karras"
    assert (parsed["Size-1"], parsed["Size-2"]) == ("1024", "1024")
    assert parsed["Clip skip"] == "1"
    assert parsed["Masked content"] == "original"
    assert parsed["Inpaint area"] == "Whole picture"
    assert parsed["Masked area padding"] == "32"


@pytest.mark.parametrize("sample", SAMPLES)
def test_samples_round_trip_exactly(sample):
    assert create_infotext(*split_infotext(sample)) == sample


def test_create_reproduces_sample_from_typed_values():
    parameters = {
        "Steps": 20,
        "Sampler": "DPM++ 2M",
        "Schedule type": "Karras",
        "CFG scale": 7.0,
        "Seed": 1234567890,
        "Size": "512x512",
        "Model hash": "6ce0161689",
        "Model": "v1-5-pruned-emaonly",
        "Clip skip": None,
        "Version": "v1.10.1",
    }
    text = create_infotext("a photo of a cat, (fluffy:1.2)", "blurry", parameters)
    assert text == SAMPLE_CAT


def test_create_with_extras_reproduces_lora_sample():
    parameters = order_parameters(
        {
            "Version": "v1.10.1",
            "Hires upscale": 2.0,
            "Hires upscaler": "Latent",
            "Lora hashes": "add_detail: 7c6bad76eb54",
            "Clip skip": 2,
            "Denoising strength": 0.7,
            "Model": "v1-5-pruned-emaonly",
            "Model hash": "6ce0161689",
            "Size": "512x768",
            "Seed": 42,
            "CFG scale": 6.5,
            "Schedule type": "Automatic",
            "Sampler": "Euler a",
            "Steps": 28,
        }
    )
    text = create_infotext("masterpiece, 1girl, <lora:add_detail:0.8>", "lowres, bad anatomy", parameters)
    assert text == SAMPLE_LORA


def test_order_parameters_core_then_extras_then_version_user():
    params = {
        "User": "alice",
        "Lora hashes": "x",
        "Version": "v1",
        "Seed": 1,
        "Emphasis": "Original",
        "Steps": 2,
        "RNG": "CPU",
    }
    ordered = order_parameters(params)
    assert list(ordered) == [
        "Steps",
        "Seed",
        "RNG",
        "Lora hashes",
        "Emphasis",
        "Version",
        "User",
    ]
    assert ordered == params
    assert PARAMETER_ORDER[:4] == ("Steps", "Sampler", "Schedule type", "CFG scale")
    assert PARAMETER_ORDER[-1] == "Tiling"


def test_value_formatting():
    text = create_infotext(
        "p",
        "",
        {
            "Steps": 20,
            "CFG scale": 7.0,
            "Denoising strength": 0.75,
            "Seed": -1,
            "Tiling": True,
            "Face restoration": None,
            "Hires fix": "Hires fix",
            "Tiny": 1e-07,
        },
    )
    assert text == ("p\nSteps: 20, CFG scale: 7, Denoising strength: 0.75, Seed: -1, Tiling: True, Hires fix, Tiny: 1e-07")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a, b", '"a, b"'),
        ("key: value", '"key: value"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("two\nlines", '"two\\nlines"'),
        ("", '""'),
        (" padded ", '" padded "'),
        ("ünïcode 猫", "ünïcode 猫"),
        ("plain", "plain"),
    ],
)
def test_quoting_and_round_trip_of_awkward_values(value, written):
    parameters = {"Steps": 1, "Seed": 2, "Extra": value, "Version": "v"}
    text = create_infotext("prompt", "neg", parameters)
    assert text.splitlines()[-1] == f"Steps: 1, Seed: 2, Extra: {written}, Version: v"
    prompt, negative, parsed = split_infotext(text)
    assert (prompt, negative) == ("prompt", "neg")
    assert parsed["Extra"] == value
    assert parse_infotext(text)["Extra"] == value
    assert create_infotext(prompt, negative, parsed) == text


def test_bare_key_round_trips():
    text = create_infotext("p", "", {"Steps": 1, "Seed": 2, "Flag": "Flag", "Alpha": 1})
    assert text == "p\nSteps: 1, Seed: 2, Flag, Alpha: 1"
    assert split_infotext(text)[2] == {
        "Steps": "1",
        "Seed": "2",
        "Flag": "Flag",
        "Alpha": "1",
    }


def test_invalid_key_is_rejected():
    with pytest.raises(ValueError):
        create_infotext("p", "", {"Bad, key": 1})


def test_multi_line_prompt_and_negative_prompt():
    prompt = "first line\nsecond line, (detail:1.1)\n\nafter blank"
    negative = "bad hands\nworse feet"
    parameters = {"Steps": 20, "Sampler": "Euler", "CFG scale": 7, "Seed": 5}
    text = create_infotext(prompt, negative, parameters)
    assert text == (
        "first line\nsecond line, (detail:1.1)\n\nafter blank\n"
        "Negative prompt: bad hands\nworse feet\n"
        "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 5"
    )
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == prompt
    assert parsed["Negative prompt"] == negative
    assert parsed["Seed"] == "5"
    assert create_infotext(*split_infotext(text)) == text


def test_no_negative_prompt_line_when_empty():
    text = create_infotext("cat", "", {"Steps": 1, "Seed": 2, "Size": "64x64"})
    assert text == "cat\nSteps: 1, Seed: 2, Size: 64x64"
    assert "Negative prompt" not in text
    assert parse_infotext(text)["Negative prompt"] == ""


def test_empty_prompt_with_negative_prompt():
    text = create_infotext("", "ugly", {"Steps": 1, "Seed": 2, "Size": "64x64"})
    assert text == "Negative prompt: ugly\nSteps: 1, Seed: 2, Size: 64x64"
    parsed = parse_infotext(text)
    assert (parsed["Prompt"], parsed["Negative prompt"]) == ("", "ugly")


def test_prompt_only():
    assert create_infotext("just a prompt", "", {}) == "just a prompt"
    parsed = parse_infotext("just a prompt")
    assert parsed["Prompt"] == "just a prompt"
    assert parsed["Negative prompt"] == ""
    assert parsed["Clip skip"] == "1"
    assert "Steps" not in parsed


def test_empty_string():
    parsed = parse_infotext("")
    assert parsed["Prompt"] == "" and parsed["Negative prompt"] == ""
    assert parsed["Schedule type"] == "Automatic" and parsed["RNG"] == "GPU"
    assert create_infotext("", "", {}) == ""


def test_last_line_with_fewer_than_three_pairs_belongs_to_prompt():
    text = "a cat\nstyle: anime, mood: calm"
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "a cat\nstyle: anime, mood: calm"
    assert "style" not in parsed
    text = "a cat\nNegative prompt: dog\nstyle: anime, mood: calm"
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "a cat"
    assert parsed["Negative prompt"] == "dog\nstyle: anime, mood: calm"


def test_windows_line_endings():
    parsed = parse_infotext(SAMPLE_LORA.replace("\n", "\r\n") + "\r\n")
    assert parsed["Prompt"] == "masterpiece, 1girl, <lora:add_detail:0.8>"
    assert parsed["Negative prompt"] == "lowres, bad anatomy"
    assert parsed["Version"] == "v1.10.1"
    assert parsed["Lora hashes"] == "add_detail: 7c6bad76eb54"


def test_line_whitespace_is_normalised_so_round_trip_is_exact():
    text = create_infotext("  a \n b  ", " c ", {"Steps": 1, "Seed": 2, "RNG": "CPU"})
    assert text == "a\nb\nNegative prompt: c\nSteps: 1, Seed: 2, RNG: CPU"
    assert create_infotext(*split_infotext(text)) == text


def test_scanner_matches_a1111_regex_on_random_lines():
    generator = random.Random(1234)
    alphabet = 'ab1 :,"\\-/é.'
    for _ in range(20000):
        line = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 40)))
        expected = A1111_PARAMETER.findall(line)
        pairs, matches = find_parameters(line)
        assert [pair for pair in pairs if pair[1] is not None] == expected, line
        assert matches == len(expected), line


HOSTILE_INPUTS = {
    "letters": "a" * 1_000_000,
    "words": "ab " * 333_333,
    "dashes": "a-/ " * 250_000,
    "colon at end": "a" * 999_999 + ":",
    "open quote": 'Steps: 1, Seed: 2, Key: "' + "x" * 1_000_000,
    "backslashes": 'a: 1, b: 2, c: "' + "\\" * 1_000_000,
    "escaped quotes": 'a: 1, b: 2, c: "' + '\\"' * 500_000 + "x",
    "many pairs": "Key: value, " * 85_000,
    "spaces": " " * 1_000_000 + "a",
    "lines": "Negative prompt: x\n" * 50_000,
    "commas": "," * 1_000_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_INPUTS))
def test_hostile_megabyte_input_is_parsed_quickly(name):
    text = HOSTILE_INPUTS[name]
    started = time.perf_counter()
    parsed = parse_infotext(text)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"
    assert isinstance(parsed["Prompt"], str)
    if name == "many pairs":
        assert parsed["Key"] == "value"
