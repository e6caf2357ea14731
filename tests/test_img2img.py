"""img2img and inpainting end to end on tiny SD1, SD1-inpainting, SDXL-inpainting and pix2pix checkpoints."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modules.app.jobs import Job
from modules.app.options import Options
from modules.generation.img2img import EMPTY_MASK_COMMENT, build_init_latent, img2img, img2img_steps, prepare_inputs
from modules.generation.params import Img2ImgParams, ParameterError
from modules.generation.txt2img import GenerationContext, images_from_tensor
from modules.imaging.infotext import parse_infotext
from modules.models.engine import DiffusionEngine
from modules.models.loader import load_checkpoint
from modules.tiny_checkpoint import build_tiny_checkpoint


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def init_image(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A smooth gradient with a little noise (a random tiny VAE reproduces smooth images best)."""
    rows, columns = np.mgrid[0:height, 0:width]
    base = np.stack([columns / width * 255, rows / height * 255, np.full((height, width), 128.0)], axis=2)
    noise = np.random.default_rng(seed).normal(0, 8, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(pixels(image) / 255.0).permute(2, 0, 1)[None]


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size)
    mask.paste(255, box)
    return mask


def request(**fields) -> Img2ImgParams:
    values = {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "seed": 7, "sampler_name": "Euler", "do_not_save_samples": True}
    values.update(fields)
    return Img2ImgParams.from_request(values)


def generation_context(path: Path, root: Path) -> GenerationContext:
    engine = DiffusionEngine(load_checkpoint(path, device=torch.device("cpu"), dtype=torch.float32))
    return GenerationContext(engine=engine, options=Options(), outputs_root=root, model_name=path.stem, model_hash=None)


@pytest.fixture(scope="module")
def variant_contexts(tmp_path_factory) -> dict[str, GenerationContext]:
    folder = tmp_path_factory.mktemp("img2img-variants")
    built = {}
    for arch in ("sd1-inpaint", "sdxl-inpaint", "sd1-pix2pix"):
        path = build_tiny_checkpoint(arch, folder / f"tiny-{arch}.safetensors", seed=0)
        built[arch] = generation_context(path, folder)
    return built


def run(context: GenerationContext, params: Img2ImgParams):
    return img2img(params, context, Job(id="test", name="img2img"))


# ---- steps and denoising ------------------------------------------------------------------------
def test_img2img_steps_follow_a1111():
    assert img2img_steps(20, 0.75, False) == (20, 15)
    assert img2img_steps(20, 0.5, True) == (40, 19)
    assert img2img_steps(20, 0.0, False) == (20, 0)


def test_denoising_zero_returns_the_init_image_up_to_vae_round_trip(app_context, monkeypatch):
    """A1111 runs one step at the smallest sigma for denoising 0, so the decoded latent is the init
    latent moved by about sigma_min. (A random tiny VAE turns even a 0.01 latent change into visible
    pixel noise, so this is checked on the latents that reach the decoder.)"""
    image = init_image(64, 64)
    engine = app_context.models.require()
    tensor = torch.from_numpy(pixels(image) / 255.0).permute(2, 0, 1)[None]
    init_latent = engine.encode_image(tensor)
    decoded = []
    original_decode = engine.decode
    monkeypatch.setattr(engine, "decode", lambda latents: decoded.append(latents.clone()) or original_decode(latents))
    kept = app_context.run_img2img(request(init_images=[image], denoising_strength=0.0, cfg_scale=1.0))
    app_context.run_img2img(request(init_images=[image], denoising_strength=0.9, cfg_scale=1.0))
    kept_change = (decoded[0] - init_latent).abs().mean().item()
    full_change = (decoded[1] - init_latent).abs().mean().item()
    assert kept_change < 2 * engine.schedule.sigma_min
    assert full_change > 10 * kept_change
    round_trip = pixels(images_from_tensor(original_decode(init_latent))[0])
    assert np.array_equal(pixels(images_from_tensor(original_decode(decoded[0]))[0]), pixels(kept.images[0]))
    assert round_trip.shape == pixels(kept.images[0]).shape


def test_img2img_is_deterministic_and_writes_infotext(app_context):
    params = request(init_images=[init_image()], denoising_strength=0.5, width=64, height=64)
    first = app_context.run_img2img(params)
    second = app_context.run_img2img(request(init_images=[init_image()], denoising_strength=0.5))
    assert np.array_equal(pixels(first.images[0]), pixels(second.images[0]))
    fields = parse_infotext(first.infotexts[0])
    assert fields["Denoising strength"] == "0.5" and fields["Size"] == "64x64" and fields["Steps"] == "4"
    assert "Mask blur" not in fields and "Image CFG scale" not in fields


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_every_resize_mode_gives_the_requested_size(app_context, mode):
    processed = app_context.run_img2img(
        request(init_images=[init_image(96, 40)], resize_mode=mode, width=64, height=72, denoising_strength=0.3)
    )
    assert processed.images[0].size == (64, 72)


def test_batch_of_init_images_sets_the_batch_size_and_saves_to_img2img_folders(app_context):
    images = [init_image(seed=1), init_image(seed=2)]
    processed = app_context.run_img2img(request(init_images=images, batch_size=2, do_not_save_samples=False, do_not_save_grid=True))
    assert processed.all_seeds == [7, 8]
    assert len(processed.images) == 3  # grid + two
    assert processed.saved_paths and all("img2img-images" in str(path) for path in processed.saved_paths)
    with pytest.raises(ParameterError, match="^init_images"):
        request(init_images=images * 2, batch_size=2)


# ---- inpainting ---------------------------------------------------------------------------------
def test_only_masked_preserves_every_unmasked_pixel(app_context):
    image = init_image(96, 64)
    mask = box_mask(image.size, (40, 20, 60, 44))
    processed = app_context.run_img2img(
        request(init_images=[image], mask=mask, mask_blur=0, inpaint_full_res=True, inpaint_full_res_padding=8)
    )
    result, original = pixels(processed.images[0]), pixels(image)
    assert processed.images[0].size == image.size
    outside = np.asarray(mask) == 0
    assert np.array_equal(result[outside], original[outside])
    assert np.abs(result[~outside] - original[~outside]).mean() > 1
    fields = parse_infotext(processed.infotexts[0])
    assert fields["Inpaint area"] == "Only masked" and fields["Masked area padding"] == "8" and fields["Mask blur"] == "0"


def test_whole_picture_overlay_keeps_pixels_away_from_the_blurred_mask(app_context):
    image = init_image(64, 64)
    mask = box_mask(image.size, (20, 20, 44, 44))
    processed = app_context.run_img2img(request(init_images=[image], mask=mask, mask_blur=2, inpaint_full_res=False, inpainting_fill=1))
    result, original = pixels(processed.images[0]), pixels(image)
    assert np.array_equal(result[:10], original[:10]) and np.array_equal(result[:, 54:], original[:, 54:])
    assert np.abs(result[26:38, 26:38] - original[26:38, 26:38]).mean() > 1


@pytest.mark.parametrize("fill", [0, 1, 2, 3])
def test_every_masked_content_mode_runs(app_context, fill):
    image = init_image(64, 64)
    mask = box_mask(image.size, (16, 16, 48, 48))
    params = request(init_images=[image], mask=mask, inpainting_fill=fill, inpaint_full_res=False, denoising_strength=0.6)
    result = pixels(app_context.run_img2img(params).images[0])
    assert result.shape == (64, 64, 3)
    assert np.array_equal(result[:5], pixels(image)[:5])  # beyond the blur kernel (10 px for blur 4)
    # what each mode puts into the masked area before sampling
    engine = app_context.models.require()
    prepared = prepare_inputs(params, app_context.options)
    inside = pixels(prepared.images[0])[24:40, 24:40]
    if fill == 1:
        assert np.array_equal(inside, pixels(image)[24:40, 24:40])
    else:
        assert not np.array_equal(inside, pixels(image)[24:40, 24:40])
    init = build_init_latent(engine, prepared, params, app_context.options, [7])
    masked_latent = init.latent[:, :, 3:5, 3:5]
    if fill == 3:
        assert masked_latent.abs().max() == 0
    if fill == 2:
        assert masked_latent.std() > 0.5  # unit noise, far above the VAE latent's spread
    assert torch.equal(init.latent[:, :, 0, :], engine.encode_image(_tensor(prepared.images[0]))[:, :, 0, :])


def test_mask_edge_cases(app_context):
    image = init_image(64, 64)
    empty = app_context.run_img2img(request(init_images=[image], mask=Image.new("L", (64, 64)), inpaint_full_res=True))
    assert EMPTY_MASK_COMMENT in empty.comments
    white = app_context.run_img2img(request(init_images=[image], mask=Image.new("L", (64, 64), 255), inpaint_full_res=False))
    assert white.images[0].size == (64, 64)
    other_size = box_mask((32, 32), (8, 8, 16, 16))  # stretched to the 64×64 image
    processed = app_context.run_img2img(request(init_images=[image], mask=other_size, mask_blur=0, inpaint_full_res=True))
    outside = np.asarray(other_size.resize((64, 64), Image.Resampling.LANCZOS)) == 0
    assert np.array_equal(pixels(processed.images[0])[outside], pixels(image)[outside])
    inverted = app_context.run_img2img(
        request(init_images=[image], mask=box_mask((64, 64), (0, 0, 64, 32)), inpainting_mask_invert=1, mask_blur=0, inpaint_full_res=False)
    )
    assert np.array_equal(pixels(inverted.images[0])[:32], pixels(image)[:32])  # the white half is kept
    tiny = app_context.run_img2img(request(init_images=[Image.new("RGB", (1, 1), (50, 100, 150))]))
    assert tiny.images[0].size == (64, 64)


def test_sd1_inpainting_checkpoint_gets_masked_image_conditioning(variant_contexts):
    context = variant_contexts["sd1-inpaint"]
    assert context.engine.unet_in_channels == 9
    image = init_image(96, 64)
    mask = box_mask(image.size, (30, 10, 60, 40))
    processed = run(context, request(init_images=[image], mask=mask, mask_blur=0, inpaint_full_res=True, inpaint_full_res_padding=4))
    outside = np.asarray(mask) == 0
    assert np.array_equal(pixels(processed.images[0])[outside], pixels(image)[outside])
    plain = run(context, request(init_images=[image], denoising_strength=0.5))  # img2img on an inpainting model
    assert plain.images[0].size == (64, 64)


def test_sdxl_inpainting_checkpoint_whole_picture(variant_contexts):
    context = variant_contexts["sdxl-inpaint"]
    assert context.engine.unet_in_channels == 9
    image = init_image(64, 64)
    mask = box_mask(image.size, (16, 16, 48, 48))
    processed = run(context, request(init_images=[image], mask=mask, mask_blur=0, inpaint_full_res=False, inpainting_fill=2))
    assert processed.images[0].size == (64, 64)
    assert np.array_equal(pixels(processed.images[0])[:16], pixels(image)[:16])


def test_pix2pix_uses_image_cfg_scale(variant_contexts):
    context = variant_contexts["sd1-pix2pix"]
    assert context.engine.unet_in_channels == 8
    image = init_image(64, 64)
    low = run(context, request(init_images=[image], image_cfg_scale=0.5))
    high = run(context, request(init_images=[image], image_cfg_scale=3.0))
    assert parse_infotext(low.infotexts[0])["Image CFG scale"] == "0.5"
    assert np.abs(pixels(low.images[0]) - pixels(high.images[0])).mean() > 0.5


def test_txt2img_runs_on_inpainting_and_pix2pix_checkpoints(variant_contexts):
    from modules.generation.params import Txt2ImgParams
    from modules.generation.txt2img import txt2img

    for arch in ("sd1-inpaint", "sd1-pix2pix"):
        params = Txt2ImgParams.from_request(
            {"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "seed": 1, "do_not_save_samples": True}
        )
        processed = txt2img(params, variant_contexts[arch], Job(id="test", name="txt2img"))
        assert processed.images[0].size == (64, 64)


def test_params_built_directly_accept_a1111_names_and_reject_bad_values():
    image = init_image(64, 64)
    params = Img2ImgParams(init_images=[image], width=64, height=64, resize_mode="Resize and fill", inpainting_fill="latent noise")
    params.inpainting_mask_invert = "Inpaint not masked"
    params.validate()
    assert (params.resize_mode, params.inpainting_fill, params.inpainting_mask_invert) == (2, 2, 1)
    with pytest.raises(ParameterError, match="^inpainting_fill"):
        Img2ImgParams(init_images=[image], width=64, height=64, inpainting_fill="smudge").validate()
    with pytest.raises(ParameterError, match="^init_images"):
        Img2ImgParams(width=64, height=64).validate()
    with pytest.raises(ParameterError, match="^mask"):
        Img2ImgParams(init_images=[image], width=64, height=64, mask="not an image").validate()
    with pytest.raises(ParameterError, match="^denoising_strength"):
        request(init_images=[image], denoising_strength=-0.1)


def test_prompt_editing_and_and_with_inpainting_conditioning(variant_contexts):
    context = variant_contexts["sd1-inpaint"]
    image = init_image(64, 64)
    mask = box_mask(image.size, (16, 16, 48, 48))
    for prompt in ("a [cat:dog:0.5]", "a cat AND a dog :0.5"):
        processed = run(
            context, request(prompt=prompt, init_images=[image, init_image(seed=3)], batch_size=2, mask=mask, inpaint_full_res=False)
        )
        assert len(processed.images) == 3
    assert not context.hooks.before and not context.hooks.after_cfg  # the generation's hooks were copied, not changed
    edit = variant_contexts["sd1-pix2pix"]
    assert run(edit, request(prompt="a [cat:dog:0.5]", init_images=[image])).images[0].size == (64, 64)


def test_img2img_stores_live_previews(app_context):
    from PIL import Image

    from modules.app.jobs import Job
    from modules.generation.img2img import img2img
    from modules.generation.params import Img2ImgParams

    context = app_context.generation_context()
    context.options = context.options.copy_with({"show_progress_every_n_steps": 1, "live_previews_enable": True})
    job = Job(id="preview-test")
    params = Img2ImgParams.from_request(
        {"prompt": "x", "steps": 4, "width": 64, "height": 64, "seed": 1, "denoising_strength": 0.75,
         "init_images": [Image.new("RGB", (64, 64), (200, 30, 30))]}
    )  # fmt: skip
    img2img(params, context, job)
    assert job.current_image is not None and job.preview_step > 0
