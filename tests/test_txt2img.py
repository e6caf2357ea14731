"""txt2img end to end on the tiny SD1 checkpoint through the real loader, sampler, RNG and saver."""

import numpy as np
import pytest
from PIL import Image

from modules.generation.params import ParameterError, Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.imaging.metadata import read_infotext


def generate(app_context, **fields):
    values = {"prompt": "a photo of a cat", "steps": 3, "width": 64, "height": 64, "seed": 1234, "sampler_name": "Euler"}
    values.update(fields)
    return app_context.run_txt2img(Txt2ImgParams.from_request(values))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def test_same_seed_gives_identical_pixels(app_context):
    first = generate(app_context)
    second = generate(app_context)
    assert first.images[0].size == (64, 64)
    assert np.array_equal(pixels(first.images[0]), pixels(second.images[0]))


def test_different_seeds_differ_and_variation_seed_changes_a_little(app_context):
    base = pixels(generate(app_context, seed=1).images[0])
    other = pixels(generate(app_context, seed=2).images[0])
    varied = pixels(generate(app_context, seed=1, subseed=99, subseed_strength=0.1).images[0])
    far = np.abs(base - other).mean()
    near = np.abs(base - varied).mean()
    assert far > 0
    assert 0 < near < far


def test_batch_uses_consecutive_seeds_and_makes_a_grid(app_context):
    processed = generate(app_context, seed=500, batch_size=2, n_iter=2)
    assert processed.all_seeds == [500, 501, 502, 503]
    assert len(processed.images) == 5  # grid first, then four images
    assert processed.index_of_first_image == 1
    single = generate(app_context, seed=501)
    # the same seed gives the same image in a batch as alone, up to batched-matmul rounding
    difference = np.abs(pixels(processed.images[2]) - pixels(single.images[0]))
    assert difference.max() <= 2, difference.max()
    assert np.abs(pixels(processed.images[1]) - pixels(single.images[0])).mean() > 1


def test_infotext_describes_the_image_and_is_saved_in_the_png(app_context):
    processed = generate(app_context, negative_prompt="blurry", cfg_scale=5, seed=77, scheduler="Karras")
    fields = parse_infotext(processed.infotexts[0])
    assert fields["Prompt"] == "a photo of a cat"
    assert fields["Negative prompt"] == "blurry"
    assert fields["Steps"] == "3"
    assert fields["Sampler"] == "Euler"
    assert fields["Schedule type"] == "Karras"
    assert fields["CFG scale"] == "5"
    assert fields["Seed"] == "77"
    assert fields["Size"] == "64x64"
    assert fields["Model hash"] == app_context.models.info.shorthash
    assert "RNG" not in processed.infotexts[0]
    path = processed.saved_paths[0]
    assert path.parent.parent.name == "txt2img-images"
    assert path.name.split("-")[1] == "77"
    with Image.open(path) as saved:
        assert read_infotext(saved) == processed.infotexts[0]


def test_rng_cpu_is_recorded_and_changes_noise(app_context):
    gpu = generate(app_context, seed=5)
    cpu = generate(app_context, seed=5, override_settings={"randn_source": "CPU"})
    assert "RNG: CPU" in cpu.infotexts[0]
    assert not np.array_equal(pixels(gpu.images[0]), pixels(cpu.images[0]))
    assert app_context.options.randn_source == "GPU"


def test_clip_skip_is_written_when_above_one(app_context):
    processed = generate(app_context, override_settings={"CLIP_stop_at_last_layers": 2})
    assert "Clip skip: 2" in processed.infotexts[0]


def test_unknown_sampler_and_schedule_are_clear_errors(app_context):
    with pytest.raises(ValueError, match="sampler_name.*Euler a"):
        generate(app_context, sampler_name="Eulerish")
    with pytest.raises(ValueError, match="scheduler.*Karras"):
        generate(app_context, scheduler="Sideways")


@pytest.mark.parametrize(
    ("fields", "name"),
    [({"width": 65}, "width"), ({"steps": 0}, "steps"), ({"cfg_scale": "lots"}, "cfg_scale"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_parameters_name_the_field(fields, name):
    with pytest.raises(ParameterError, match=name):
        Txt2ImgParams.from_request(fields)


def test_interrupt_returns_the_partial_image_and_skip_moves_on(app_context):
    from modules.app.jobs import Job
    from modules.generation.txt2img import txt2img

    def stop_after_two(action):
        def hook(after):
            if after.sampling_step == 2:
                action(job)

        return hook

    for action, expected_images in [(Job.interrupt, 1), (Job.skip, 2)]:
        context = app_context.generation_context()
        job = Job(id="stop-test")
        context.hooks.after_cfg.append(stop_after_two(action))
        params = Txt2ImgParams.from_request({"prompt": "x", "steps": 6, "width": 64, "height": 64, "seed": 1, "n_iter": 2})
        processed = txt2img(params, context, job)
        images = processed.images[processed.index_of_first_image :]
        assert len(images) == expected_images, action
        assert processed.interrupted == (action is Job.interrupt)
