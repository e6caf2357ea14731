"""img2img and inpainting as numbered stages:

1. settings and names (as txt2img)
2. inputs: flatten, resize mode, mask (invert, blur, "Only masked" crop), overlays, masked-content "fill"
3. init latent: VAE encode, latent resize for mode 3, "latent noise"/"latent nothing" in the masked area,
   image conditioning for inpainting (9-channel) and instruct-pix2pix (8-channel) UNets
4. per batch: conditioning → noise added at the start sigma → sample (unmasked latent re-imposed on
   every x0 prediction) → decode → paste back / overlay → infotext → save
5. grid, then the `Processed` result

Denoising strength d runs int(d·steps)+1 steps at the low-noise end of a `steps`-step schedule; with the
"img2img_fix_steps" setting the schedule is stretched to int(steps/d) so that `steps` steps run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import torch
import torch.nn.functional as functional
from PIL import Image, ImageChops

from modules.app.jobs import Interrupted, Job, Skipped
from modules.app.options import Options
from modules.generation import masking
from modules.generation.infotext_fields import generation_parameters
from modules.generation.params import Img2ImgParams, ParameterError, resolve_seed
from modules.generation.pix2pix import EditCFGDenoiser
from modules.generation.resize import LATENT_RESIZE, RESIZE_AND_FILL, resize_image
from modules.generation.results import Processed
from modules.generation.storage import OutputWriter
from modules.generation.txt2img import (
    LATENT_FACTOR,
    GenerationContext,
    _eta,
    _noise_sampler,
    _result_parameters,
    _sample_batch,
    _store_preview,
    finish_processed,
    images_from_tensor,
    stopped_latents,
)
from modules.generation.txt2img import _batch_hooks as script_batch_hooks
from modules.imaging.image_input import binary_mask, flatten
from modules.imaging.infotext import create_infotext
from modules.models.engine import Conditioning, DiffusionEngine
from modules.networks.activation import prepare_prompt_networks, strip_network_tags
from modules.sampling.denoiser import AfterCFGCallbackParams, CFGDenoiser, DenoiserHooks
from modules.sampling.rng import ImageRNG
from modules.sampling.samplers import find_sampler, sample
from modules.sampling.schedules import get_sigmas

INPAINT_CHANNELS = 9
EDIT_CHANNELS = 8
DEFAULT_IMAGE_CFG_SCALE = 1.5
EMPTY_MASK_COMMENT = 'Unable to perform "Only masked" inpainting because the mask is blank; ran img2img on the whole picture.'


@dataclass
class PreparedInputs:
    """Stage 2's result: processing-size images, the mask and what the final paste-back needs."""

    images: list[Image.Image]
    mask: Image.Image | None = None
    overlays: list[Image.Image] = field(default_factory=list)
    paste_box: tuple[int, int, int, int] | None = None
    comments: list[str] = field(default_factory=list)


def img2img_steps(steps: int, denoising_strength: float, fix_steps: bool) -> tuple[int, int]:
    """(schedule length, index of the last step) as A1111: `t_enc`+1 steps run at the schedule's end."""
    if fix_steps:
        if denoising_strength <= 0:
            return steps, 0
        total = max(int(steps / min(denoising_strength, 0.999)), 1)
        return total, min(steps - 1, total - 1)
    return steps, int(min(denoising_strength, 0.999) * steps)


def prepare_inputs(params: Img2ImgParams, options: Options) -> PreparedInputs:
    """Stage 2: fit the input images and mask to the processing size, build overlays and fill."""
    width, height = params.width, params.height
    background = str(options.get("img2img_background_color", "#ffffff"))
    flattened = [flatten(image, background) for image in params.init_images]
    prepared = PreparedInputs(images=[])
    mask = None
    overlay_mask = None
    region = None
    if params.mask is not None:
        mask = binary_mask(params.mask)
        if params.inpainting_mask_invert:
            mask = ImageChops.invert(mask)
        blur_x = params.mask_blur if params.mask_blur_x is None else params.mask_blur_x
        blur_y = params.mask_blur if params.mask_blur_y is None else params.mask_blur_y
        if params.inpaint_full_res:
            # "Only masked" works in the input image's coordinates: a mask of another size is stretched
            mask = masking.blur_mask(mask.resize(flattened[0].size, Image.Resampling.LANCZOS), blur_x, blur_y)
            found = masking.crop_region(mask, params.inpaint_full_res_padding)
            if found is None:
                prepared.comments.append(EMPTY_MASK_COMMENT)
                mask = None
            else:
                region = masking.expand_crop_region(found, width, height, mask.width, mask.height)
                overlay_mask = mask
                x1, y1, x2, y2 = region
                prepared.paste_box = (x1, y1, x2 - x1, y2 - y1)
                mask = resize_image(RESIZE_AND_FILL, mask.crop(region), width, height)
        else:
            mask = masking.blur_mask(mask, blur_x, blur_y)
            mask = resize_image(params.resize_mode, mask, width, height)
            overlay_mask = masking.overlay_mask(mask)
    prepared.mask = mask

    for image in flattened:
        if region is not None:
            if image.size != overlay_mask.size:
                image = image.resize(overlay_mask.size, Image.Resampling.LANCZOS)
        elif params.resize_mode != LATENT_RESIZE or mask is not None:
            image = resize_image(params.resize_mode, image, width, height)
        elif image.size != flattened[0].size:
            image = image.resize(flattened[0].size, Image.Resampling.LANCZOS)
        if mask is not None:
            prepared.overlays.append(masking.overlay_image(image, overlay_mask))
        if region is not None:
            image = resize_image(RESIZE_AND_FILL, image.crop(region), width, height)
        if mask is not None and params.inpainting_fill != 1:
            image = masking.fill_masked_area(image, mask)
        prepared.images.append(image)
    return prepared


def _pixels(images: list[Image.Image]) -> torch.Tensor:
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


@dataclass
class InitLatent:
    """Stage 3's result for one request (shared by all its batches)."""

    latent: torch.Tensor
    keep: torch.Tensor | None = None  # 1 where the input latent is kept
    repaint: torch.Tensor | None = None  # 1 where it is repainted
    image_conditioning: torch.Tensor | None = None


def build_init_latent(
    engine: DiffusionEngine, prepared: PreparedInputs, params: Img2ImgParams, options: Options, seeds: list[int]
) -> InitLatent:
    """Stage 3: encode the inputs; mask and masked-content modes in latent space; image conditioning."""
    pixels = _pixels(prepared.images).to(engine.device)
    latent = engine.encode_image(pixels)
    latent_size = (params.height // LATENT_FACTOR, params.width // LATENT_FACTOR)
    if latent.shape[-2:] != latent_size:
        latent = functional.interpolate(latent, size=latent_size, mode="bilinear")
    result = InitLatent(latent)
    if prepared.mask is not None:
        repaint = masking.latent_mask(prepared.mask, latent_size[1], latent_size[0], latent.shape[1]).to(latent.device)
        result.repaint, result.keep = repaint, 1.0 - repaint
        if params.inpainting_fill == 2:
            noise = _rng(options, latent.shape[1:], seeds[: latent.shape[0]]).first().to(latent.device, torch.float32)
            result.latent = latent * result.keep + noise * repaint
        elif params.inpainting_fill == 3:
            result.latent = latent * result.keep
    channels = engine.unet_in_channels
    if channels == INPAINT_CHANNELS:
        result.image_conditioning = _inpainting_conditioning(
            engine, pixels, prepared.mask, float(options.get("inpainting_mask_weight", 1.0)), latent_size
        )
    elif channels == EDIT_CHANNELS:
        image_latent = engine.encode_image(pixels, scaled=False)
        result.image_conditioning = (
            functional.interpolate(image_latent, size=latent_size, mode="bilinear")
            if image_latent.shape[-2:] != latent_size
            else image_latent
        )
    return result


def _inpainting_conditioning(
    engine: DiffusionEngine, pixels: torch.Tensor, mask: Image.Image | None, weight: float, latent_size: tuple[int, int]
) -> torch.Tensor:
    """Mask (1 channel) + VAE latent of the image with the masked area grey (4 channels)."""
    if mask is None:
        conditioning_mask = torch.ones(1, 1, *pixels.shape[-2:], device=pixels.device)
    else:
        array = np.asarray(mask.convert("L").resize((pixels.shape[-1], pixels.shape[-2])), dtype=np.float32) / 255.0
        conditioning_mask = torch.from_numpy(np.around(array))[None, None].to(pixels.device)
    signed = pixels * 2.0 - 1.0
    masked = torch.lerp(signed, signed * (1.0 - conditioning_mask), weight)
    masked_latent = engine.encode_image((masked + 1.0) / 2.0)
    if masked_latent.shape[-2:] != latent_size:
        masked_latent = functional.interpolate(masked_latent, size=latent_size, mode="bilinear")
    small_mask = functional.interpolate(conditioning_mask, size=latent_size).expand(masked_latent.shape[0], -1, -1, -1)
    return torch.cat([small_mask, masked_latent], dim=1)


def _rng(options: Options, shape, seeds: list[int], params: Img2ImgParams | None = None, subseeds: list[int] | None = None) -> ImageRNG:
    return ImageRNG(
        shape,
        seeds,
        subseeds=subseeds,
        subseed_strength=params.subseed_strength if params else 0.0,
        seed_resize_from_h=params.seed_resize_from_h if params else -1,
        seed_resize_from_w=params.seed_resize_from_w if params else -1,
        source=options.randn_source,
        eta_noise_seed_delta=int(options.eta_noise_seed_delta),
    )


def _batch_rows(tensor: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """The first `rows` rows of a per-image tensor, repeating a single row when needed."""
    if tensor is None or tensor.ndim < 4:
        return tensor
    if tensor.shape[0] == 1 and rows > 1:
        return tensor.expand(rows, -1, -1, -1)
    return tensor[:rows]


def _masking_hooks(hooks: DenoiserHooks, init: InitLatent) -> DenoiserHooks:
    """A copy of the generation's hooks with the latent re-imposition first among the after-CFG hooks."""
    if init.keep is None:
        return DenoiserHooks(before=list(hooks.before), denoised=list(hooks.denoised), after_cfg=list(hooks.after_cfg))

    def reimpose(params: AfterCFGCallbackParams) -> None:
        params.x = init.latent[: params.x.shape[0]] * init.keep + params.x * init.repaint

    return DenoiserHooks(before=list(hooks.before), denoised=list(hooks.denoised), after_cfg=[reimpose, *hooks.after_cfg])


def _sample_from_init(
    params: Img2ImgParams,
    context: GenerationContext,
    options: Options,
    job: Job,
    sampler_name: str,
    init: InitLatent,
    seeds: list[int],
    subseeds: list[int],
    cond: Conditioning,
    uncond: Conditioning | None,
) -> torch.Tensor:
    """Stage 4b–4c: noise the init latent to the start sigma and sample down from there."""
    engine = context.engine
    rows = len(seeds)
    init_latent = _batch_rows(init.latent, rows)
    steps, last_step = img2img_steps(params.steps, params.denoising_strength, bool(options.get("img2img_fix_steps", False)))
    sigmas = get_sigmas(params.scheduler, steps, engine.schedule, sampler_name).to(engine.device)
    sigmas = sigmas[len(sigmas) - last_step - 2 :]
    rng = _rng(options, init_latent.shape[1:], seeds, params, subseeds)
    noise = rng.first().to(engine.device, torch.float32)
    multiplier = _noise_multiplier(params, options)
    if multiplier != 1.0:
        noise = noise * multiplier
    image_conditioning = _batch_rows(init.image_conditioning, rows)
    hooks = _masking_hooks(context.hooks, InitLatent(init_latent, init.keep, init.repaint))

    if engine.unet_in_channels == EDIT_CHANNELS and image_conditioning is not None:
        if uncond is None:
            uncond = engine.encode_prompts([params.negative_prompt] * rows, width=params.width, height=params.height)
        denoiser: Any = EditCFGDenoiser(
            lambda x, sigma, conditioning, image: engine.denoise(x, sigma, conditioning, image),
            cond,
            uncond,
            image_conditioning,
            params.cfg_scale,
            _image_cfg_scale(params),
            total_steps=last_step + 1,
            hooks=hooks,
            check=job.check,
        )
    else:
        current: dict[str, torch.Tensor] = {}
        if image_conditioning is not None:
            hooks.before.insert(0, lambda step_params: current.__setitem__("x", step_params.x))

        def model(x: torch.Tensor, sigma: torch.Tensor, conditioning: Conditioning) -> torch.Tensor:
            extra = None
            if image_conditioning is not None:
                extra = image_conditioning[_image_rows(x, current.get("x"), image_conditioning.shape[0])]
            return engine.denoise(x, sigma, conditioning, extra)

        denoiser = CFGDenoiser(model, cond, uncond, params.cfg_scale, total_steps=last_step + 1, hooks=hooks, check=job.check)

    def on_step(state: dict[str, Any]) -> None:
        job.sampling_step = int(state["i"]) + 1
        denoiser.step = job.sampling_step
        job.current_latent = state.get("denoised")
        _store_preview(job, options, engine)
        job.check()

    samples = sample(
        sampler_name,
        denoiser,
        with_extra_noise(options, noise, init_latent, init_latent + noise * sigmas[0]),
        sigmas,
        model=engine.schedule,
        noise_sampler=_noise_sampler(sampler_name, rng, noise, sigmas, seeds, engine.device),
        callback=on_step,
        eta=_eta(params, options, sampler_name),
        s_noise=params.s_noise if params.s_noise is not None else float(options.s_noise),
    )
    if init.keep is not None:
        samples = samples * init.repaint + init_latent * init.keep
    return samples


def _image_rows(x: torch.Tensor, batch_x: torch.Tensor | None, images: int) -> list[int]:
    """Which image each model row belongs to: the denoiser stacks copies of the batch rows (cond rows,
    AND sub-prompt rows, uncond rows), so a row is matched to the batch row it equals."""
    rows = []
    for row in range(x.shape[0]):
        match = row % images
        if batch_x is not None and batch_x.shape[0] == images:
            match = next((index for index in range(images) if torch.equal(x[row], batch_x[index])), match)
        rows.append(match)
    return rows


def with_extra_noise(options: Options, noise: torch.Tensor, x: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    """A1111's extra img2img noise: with the `img2img_extra_noise` setting above 0, the on_extra_noise
    callbacks get ExtraNoiseParams(noise, x, xi) — `x` the init latent, `xi` it noised to the start
    sigma — and may replace `noise`; `xi + noise * setting` is then sampled. Otherwise `xi` unchanged."""
    amount = float(options.get("img2img_extra_noise", 0.0) or 0.0)
    if amount <= 0:
        return xi
    from modules.plugins.callbacks import ExtraNoiseParams, registry  # noqa: PLC0415 - only when extensions may hook in

    params = ExtraNoiseParams(noise, x, xi)
    registry.fire("callbacks_extra_noise", params)
    return xi + params.noise * amount


def _noise_multiplier(params: Img2ImgParams, options: Options) -> float:
    if params.initial_noise_multiplier is not None:
        return float(params.initial_noise_multiplier)
    return float(options.get("initial_noise_multiplier", 1.0))


def _image_cfg_scale(params: Img2ImgParams) -> float:
    return DEFAULT_IMAGE_CFG_SCALE if params.image_cfg_scale is None else float(params.image_cfg_scale)


def _batch_layout(params: Img2ImgParams) -> None:
    """A1111: one init image is repeated over the batch; several set the batch size to their count."""
    count = len(params.init_images)
    if count > 1:
        if count > params.batch_size:
            raise ParameterError("init_images", f"{count} images given for a batch size of {params.batch_size}")
        params.batch_size = count


def img2img(params: Img2ImgParams, context: GenerationContext, job: Job) -> Processed:
    """Run an img2img or inpainting request to completion (or until interrupted)."""
    # 1. settings and names (scripts' before_process may still change any parameter)
    context.scripts.before_process(params)
    options = context.options.copy_with(params.override_settings)
    engine = context.engine
    clip_skip = int(options.CLIP_stop_at_last_layers)
    sampler_info = find_sampler(params.sampler_name)
    params.sampler_name = sampler_info.name
    get_sigmas(params.scheduler, params.steps, engine.schedule, sampler_info.name)
    _batch_layout(params)

    count = params.batch_size * params.n_iter
    seed = resolve_seed(params.seed)
    subseed = resolve_seed(params.subseed)
    all_seeds = [seed + index for index in range(count)]
    all_subseeds = [subseed + index for index in range(count)]
    all_prompts = [params.prompt] * count
    all_negative_prompts = [params.negative_prompt] * count
    context.scripts.process(params, all_prompts, all_negative_prompts, all_seeds, all_subseeds)
    prompt_networks = prepare_prompt_networks(context.networks, engine, all_prompts)
    job_timestamp = datetime.now().strftime("%Y%m%d%H%M%S")
    writer = OutputWriter(options, context.outputs_root, kind="img2img", job_timestamp=job_timestamp)

    # 2–3. inputs and the init latent
    prepared = prepare_inputs(params, options)
    if len(prepared.images) == 1 and params.batch_size > 1:
        prepared.images = prepared.images * params.batch_size
        prepared.overlays = prepared.overlays * params.batch_size
    init = build_init_latent(engine, prepared, params, options, all_seeds)
    extra = {**_extra_parameters(params, prepared, options), **prompt_networks.infotext}
    image_cfg = _image_cfg_scale(params) if engine.unet_in_channels == EDIT_CHANNELS else None

    job.job_count = params.n_iter
    _, last_step = img2img_steps(params.steps, params.denoising_strength, bool(options.get("img2img_fix_steps", False)))
    job.sampling_steps = last_step + 1
    images: list[Image.Image] = []
    infotexts: list[str] = []
    saved = []
    interrupted = False
    cache: dict[tuple[str, ...], Conditioning] = {}
    for iteration in range(params.n_iter):
        job.job_no = iteration
        job.next_batch()
        job.current_latent = None
        if interrupted:
            break
        start = iteration * params.batch_size
        batch = slice(start, start + params.batch_size)
        script_batch_hooks(context, params, iteration, batch, all_prompts, all_seeds, all_subseeds)
        seeds, subseeds = all_seeds[batch], all_subseeds[batch]

        def sampling(cond: Conditioning, uncond: Conditioning | None, seeds=seeds, subseeds=subseeds) -> torch.Tensor:
            return _sample_from_init(params, context, options, job, sampler_info.name, init, seeds, subseeds, cond, uncond)

        try:
            latents = _sample_batch(
                params, context, options, job, sampler_info.name, clip_skip,
                strip_network_tags(all_prompts[batch]), all_negative_prompts[batch], seeds, subseeds, cache, sampling=sampling,
            )  # fmt: skip
        except (Interrupted, Skipped) as stop:
            # As A1111: a batch stopped mid-sampling is still decoded from its last x0 prediction.
            interrupted = interrupted or isinstance(stop, Interrupted)
            latents = stopped_latents(job, params.batch_size)
            if latents is None:
                if interrupted:
                    break
                continue
        decoded = engine.decode(latents)
        context.scripts.postprocess_batch(params, decoded, iteration)
        for offset, image in enumerate(context.scripts.postprocess_batch_list(params, images_from_tensor(decoded), iteration)):
            index = min(start + offset, count - 1)
            if prepared.overlays:
                image = masking.apply_overlay(image, prepared.overlays[offset % len(prepared.overlays)], prepared.paste_box)
            image = context.scripts.postprocess_image(params, image)
            values = generation_parameters(
                params, options, seed=all_seeds[index], subseed=all_subseeds[index], clip_skip=clip_skip,
                model_name=context.model_name, model_hash=context.model_hash, vae_name=context.vae_name,
                vae_hash=context.vae_hash, version=context.version,
                extra={**extra, **context.scripts.extra_generation_params(params)}, denoising_strength=params.denoising_strength, image_cfg_scale=image_cfg,
            )  # fmt: skip
            text = create_infotext(all_prompts[index], all_negative_prompts[index], values)
            images.append(image)
            infotexts.append(text)
            if options.samples_save and not params.do_not_save_samples:
                saved.append(writer.save_sample(image, text, params, all_seeds[index], all_prompts[index], index, context))

    parameters = _result_parameters(params, context, clip_skip, job_timestamp)
    parameters.pop("init_images", None)
    parameters.pop("mask", None)
    return finish_processed(
        params, context, options, writer,
        images=images, infotexts=infotexts, saved=saved, seed=seed, subseed=subseed,
        all_prompts=all_prompts, all_negative_prompts=all_negative_prompts, all_seeds=all_seeds, all_subseeds=all_subseeds,
        parameters=parameters, interrupted=interrupted,
        comments=list(prepared.comments) + prompt_networks.comments, extra_generation_params=extra,
    )  # fmt: skip


def _extra_parameters(params: Img2ImgParams, prepared: PreparedInputs, options: Options) -> dict[str, Any]:
    """img2img's infotext entries after the common ones (A1111's `extra_generation_params`)."""
    extra: dict[str, Any] = {}
    if prepared.mask is not None:
        extra["Mask blur"] = params.mask_blur
        if prepared.paste_box is not None:
            extra["Inpaint area"] = "Only masked"
            extra["Masked area padding"] = params.inpaint_full_res_padding
    multiplier = _noise_multiplier(params, options)
    if multiplier != 1.0:
        extra["Noise multiplier"] = multiplier
    return extra
