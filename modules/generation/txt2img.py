"""txt2img as numbered stages, like a diffusers pipeline call:

1. settings: the per-job copy of the options with `override_settings`
2. names: sampler and schedule looked up (an unknown name fails before any work)
3. seeds and prompts for every image
4. per batch: conditioning → noise → sample → decode → infotext → save
5. grid, then the `Processed` result
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from modules.app.jobs import Interrupted, Job, Skipped
from modules.app.options import Options
from modules.generation.infotext_fields import generation_parameters
from modules.generation.params import Txt2ImgParams, resolve_seed
from modules.generation.previews import preview_image
from modules.generation.results import Processed
from modules.generation.script_hooks import NoScriptHooks, ScriptHooks
from modules.generation.storage import OutputWriter
from modules.imaging.grid import image_grid
from modules.imaging.infotext import create_infotext
from modules.models.engine import Conditioning, DiffusionEngine
from modules.networks.activation import prepare_prompt_networks, strip_network_tags
from modules.prompting.conditioning import EncodeSettings
from modules.prompting.schedules import BatchConditioning, build_batch_conditioning
from modules.sampling.brownian import BrownianTreeNoise
from modules.sampling.denoiser import CFGDenoiser, DenoiserHooks
from modules.sampling.rng import ImageRNG
from modules.sampling.samplers import find_sampler, sample
from modules.sampling.schedules import get_sigmas

LATENT_FACTOR = 8
EMBEDDINGS_USED_KEY = "embeddings used"


@dataclass
class GenerationContext:
    """What a generation needs besides its parameters: the engine, settings and where to save."""

    engine: DiffusionEngine
    options: Options
    outputs_root: Path
    model_name: str
    model_hash: str | None
    vae_name: str | None = None
    vae_hash: str | None = None
    version: str = ""
    hooks: DenoiserHooks = field(default_factory=DenoiserHooks)
    demo_model: bool = False
    scripts: ScriptHooks = field(default_factory=NoScriptHooks)
    networks: Any = None  # a `modules.networks.activation.NetworkManager`, or None (tags only removed)


def images_from_tensor(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] → PIL RGB images, rounding as A1111 does (×255 then truncate)."""
    array = (images.permute(0, 2, 3, 1).numpy() * 255.0).astype(np.uint8)
    return [Image.fromarray(item) for item in array]


def txt2img(params: Txt2ImgParams, context: GenerationContext, job: Job) -> Processed:
    """Run a txt2img request to completion (or until interrupted) and return its images."""
    # 1. settings (scripts' before_process may still change any parameter)
    context.scripts.before_process(params)
    options = context.options.copy_with(params.override_settings)
    engine = context.engine
    clip_skip = int(options.CLIP_stop_at_last_layers)

    # 2. names (fail early, before any model work)
    sampler_info = find_sampler(params.sampler_name)
    params.sampler_name = sampler_info.name
    get_sigmas(params.scheduler, params.steps, engine.schedule, sampler_info.name)

    # 3. seeds and prompts
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
    writer = OutputWriter(options, context.outputs_root, kind="txt2img", job_timestamp=job_timestamp)

    job.job_count = params.n_iter
    job.sampling_steps = params.steps
    images: list[Image.Image] = []
    infotexts: list[str] = []
    saved: list[Path] = []
    interrupted = False
    cache: dict = {}

    for iteration in range(params.n_iter):
        job.job_no = iteration
        job.next_batch()
        job.current_latent = None
        if interrupted:
            break
        start = iteration * params.batch_size
        batch = slice(start, start + params.batch_size)
        _batch_hooks(context, params, iteration, batch, all_prompts, all_seeds, all_subseeds)
        try:
            latents = _sample_batch(
                params,
                context,
                options,
                job,
                sampler_info.name,
                clip_skip,
                strip_network_tags(all_prompts[batch]),
                all_negative_prompts[batch],
                all_seeds[batch],
                all_subseeds[batch],
                cache,
            )
        except (Interrupted, Skipped) as stop:
            # As A1111: a batch stopped mid-sampling is still decoded from its last x0 prediction.
            interrupted = interrupted or isinstance(stop, Interrupted)
            latents = stopped_latents(job, params.batch_size)
            if latents is None:
                if interrupted:
                    break
                continue
        decoded_tensor = engine.decode(latents)
        context.scripts.postprocess_batch(params, decoded_tensor, iteration)
        decoded = context.scripts.postprocess_batch_list(params, images_from_tensor(decoded_tensor), iteration)
        for offset, image in enumerate(decoded):
            index = min(start + offset, count - 1)
            image = context.scripts.postprocess_image(params, image)
            extras = {**_prompt_extras(options, cache), **prompt_networks.infotext, **context.scripts.extra_generation_params(params)}
            text = _infotext(params, context, options, all_prompts, all_negative_prompts, all_seeds, all_subseeds, index, clip_skip, extras)
            images.append(image)
            infotexts.append(text)
            if options.samples_save and not params.do_not_save_samples:
                saved.append(writer.save_sample(image, text, params, all_seeds[index], all_prompts[index], index, context))

    return finish_processed(
        params, context, options, writer,
        images=images, infotexts=infotexts, saved=saved, seed=seed, subseed=subseed,
        all_prompts=all_prompts, all_negative_prompts=all_negative_prompts, all_seeds=all_seeds, all_subseeds=all_subseeds,
        parameters=_result_parameters(params, context, clip_skip, job_timestamp), interrupted=interrupted,
        comments=prompt_networks.comments,
    )  # fmt: skip


def finish_processed(
    params: Txt2ImgParams,
    context: GenerationContext,
    options: Options,
    writer: OutputWriter,
    *,
    images: list[Image.Image],
    infotexts: list[str],
    saved: list[Path],
    seed: int,
    subseed: int,
    all_prompts: list[str],
    all_negative_prompts: list[str],
    all_seeds: list[int],
    all_subseeds: list[int],
    parameters: dict[str, Any],
    interrupted: bool,
    comments: list[str],
    extra_generation_params: dict[str, Any] | None = None,
) -> Processed:
    """The last stage shared by txt2img and img2img: the `Processed` result, the grid, and the
    scripts' postprocess hook."""
    parameters["extra_generation_params"] = {**(extra_generation_params or {}), **context.scripts.extra_generation_params(params)}
    processed = Processed(
        images=images,
        infotexts=infotexts,
        prompt=params.prompt,
        negative_prompt=params.negative_prompt,
        seed=seed,
        subseed=subseed,
        all_prompts=all_prompts,
        all_negative_prompts=all_negative_prompts,
        all_seeds=all_seeds,
        all_subseeds=all_subseeds,
        parameters=parameters,
        saved_paths=saved,
        interrupted=interrupted,
        comments=list(comments),
    )
    if context.demo_model:
        processed.comments.append("Demo model: these images are noise from a tiny random-weight checkpoint.")
    _add_grid(processed, params, options, writer, context)
    context.scripts.postprocess(params, processed)
    return processed


def _batch_hooks(
    context: GenerationContext, params, batch_number: int, batch: slice, prompts: list[str], seeds: list[int], subseeds: list[int]
) -> None:
    """Scripts' before_process_batch and process_batch; changes they make to the batch's lists stick."""
    batch_prompts, batch_seeds, batch_subseeds = prompts[batch], seeds[batch], subseeds[batch]
    context.scripts.before_process_batch(params, batch_number, batch_prompts, batch_seeds, batch_subseeds)
    context.scripts.process_batch(params, batch_number, batch_prompts, batch_seeds, batch_subseeds)
    prompts[batch], seeds[batch], subseeds[batch] = batch_prompts, batch_seeds, batch_subseeds


def stopped_latents(job: Job, batch_size: int) -> torch.Tensor | None:
    """The last x0 prediction of the batch that was just interrupted or skipped, if it got that far."""
    latent = job.current_latent
    return latent if isinstance(latent, torch.Tensor) and latent.shape[0] == batch_size else None


def _sample_batch(
    params: Txt2ImgParams,
    context: GenerationContext,
    options: Options,
    job: Job,
    sampler_name: str,
    clip_skip: int,
    prompts: list[str],
    negative_prompts: list[str],
    seeds: list[int],
    subseeds: list[int],
    cache: dict,
    sampling: Callable[[Conditioning, Conditioning | None], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Stages 4a–4c for one batch: conditioning, noise, sampling. Returns latents.

    `sampling(cond, uncond)`, when given, replaces the noise and sampling stages (img2img uses the same
    conditioning with its own start latent). It gets plain `Conditioning`s when the prompts have no
    scheduling or AND, else `BatchConditioning` schedules (which `CFGDenoiser` accepts)."""
    engine = context.engine

    cond, uncond = _batch_conditioning(params, options, engine, clip_skip, prompts, negative_prompts, cache)

    if sampling is not None:
        return sampling(_fixed_if_possible(cond), None if uncond is None else _fixed_if_possible(uncond))

    shape = (engine.latent_channels, params.height // LATENT_FACTOR, params.width // LATENT_FACTOR)
    rng = ImageRNG(
        shape,
        seeds,
        subseeds=subseeds,
        subseed_strength=params.subseed_strength,
        seed_resize_from_h=params.seed_resize_from_h,
        seed_resize_from_w=params.seed_resize_from_w,
        source=options.randn_source,
        eta_noise_seed_delta=int(options.eta_noise_seed_delta),
    )
    noise = rng.first().to(engine.device, torch.float32)
    sigmas = get_sigmas(params.scheduler, params.steps, engine.schedule, sampler_name).to(engine.device)
    denoiser = CFGDenoiser(
        engine.denoise,
        cond,
        uncond,
        params.cfg_scale,
        total_steps=params.steps,
        hooks=context.hooks,
        check=job.check,
        empty_chunk=_empty_chunk(engine, options, clip_skip),
    )

    def on_step(state: dict[str, Any]) -> None:
        job.sampling_step = int(state["i"]) + 1
        denoiser.step = job.sampling_step
        job.current_latent = state.get("denoised")
        _store_preview(job, options, engine)
        job.check()

    return sample(
        sampler_name,
        denoiser,
        noise * sigmas[0],
        sigmas,
        model=engine.schedule,
        noise_sampler=_noise_sampler(sampler_name, rng, noise, sigmas, seeds, engine.device),
        callback=on_step,
        eta=_eta(params, options, sampler_name),
        s_noise=params.s_noise if params.s_noise is not None else float(options.s_noise),
    )


def _batch_conditioning(
    params: Txt2ImgParams,
    options: Options,
    engine: DiffusionEngine,
    clip_skip: int,
    prompts: list[str],
    negative_prompts: list[str],
    cache: dict,
) -> tuple[BatchConditioning, BatchConditioning | None]:
    """Stage 4a: the batch's prompt schedules (editing, alternation, AND), each distinct text encoded
    once per generation; the denoiser switches between them at the scheduled steps."""
    settings = EncodeSettings(
        clip_skip=clip_skip,
        emphasis=str(options.get("emphasis", "Original")),
        comma_padding_backtrack=int(options.get("comma_padding_backtrack", 20)),
        width=params.width,
        height=params.height,
        crop_top=int(options.get("sdxl_crop_top", 0)),
        crop_left=int(options.get("sdxl_crop_left", 0)),
    )
    encoder = engine.prompt_encoder
    cond = build_batch_conditioning(encoder, prompts, params.steps, settings, composable=True, cache=cache)
    uncond = None
    if params.cfg_scale != 1.0 or cond.is_composable:
        uncond = build_batch_conditioning(encoder, negative_prompts, params.steps, settings, composable=False, cache=cache)
    used = cache.setdefault(EMBEDDINGS_USED_KEY, {})
    used.update(cond.embeddings_used)
    if uncond is not None:
        used.update(uncond.embeddings_used)
    return cond, uncond


def _empty_chunk(engine: DiffusionEngine, options: Options, clip_skip: int) -> torch.Tensor | None:
    """The empty prompt's states when "pad prompt/negative prompt to be same length" is on."""
    if not options.get("pad_cond_uncond", False):
        return None
    return engine.encode_prompts([""], clip_skip=clip_skip).cross_attention


def _fixed_if_possible(conditioning: BatchConditioning) -> Conditioning | BatchConditioning:
    """A plain `Conditioning` when the batch has no AND and nothing scheduled, else the schedule."""
    fixed = all(len(parts) == 1 and len(parts[0][1].entries) == 1 for parts in conditioning.images)
    if fixed and not conditioning.is_composable:
        return conditioning.at_step(0).rows
    return conditioning


def _prompt_extras(options: Options, cache: dict) -> dict[str, Any]:
    """Infotext fields from the prompts: `TI hashes` of the embeddings used (A1111's format)."""
    used = cache.get(EMBEDDINGS_USED_KEY) or {}
    if not used or not options.get("textual_inversion_add_hashes_to_infotext", True):
        return {}
    hashes = [f"{name.replace(':', '').replace(',', '')}: {embedding.shorthash}" for name, embedding in used.items() if embedding.shorthash]
    return {"TI hashes": ", ".join(hashes)} if hashes else {}


def _store_preview(job: Job, options: Options, engine: DiffusionEngine) -> None:
    """Every `show_progress_every_n_steps` steps, put a preview of the denoised latents on the job."""
    every = int(options.show_progress_every_n_steps)
    latents = job.current_latent
    if not options.live_previews_enable or every <= 0 or latents is None or job.sampling_step % every:
        return
    job.current_image = preview_image(latents, options.show_progress_type, engine)
    job.preview_step = job.sampling_step


def _noise_sampler(sampler_name: str, rng: ImageRNG, noise: torch.Tensor, sigmas: torch.Tensor, seeds: list[int], device: torch.device):
    """Fresh noise for stochastic steps: per-image Brownian trees for the SDE samplers (as A1111), else
    the next draw of each image's generator."""
    if find_sampler(sampler_name).brownian_noise:
        return BrownianTreeNoise(noise, sigmas, seeds)
    return lambda sigma, sigma_next: rng.next().to(device, torch.float32)


def _eta(params: Txt2ImgParams, options: Options, sampler_name: str) -> float | None:
    """The request's eta, else the setting A1111 uses for this sampler (None: the sampler has no eta)."""
    if find_sampler(sampler_name).default_eta is None:
        return None
    if params.eta is not None:
        return params.eta
    return float(options.eta_ddim if sampler_name == "DDIM" else options.eta_ancestral)


def _infotext(params, context, options, prompts, negatives, seeds, subseeds, index, clip_skip, extra=None) -> str:
    values = generation_parameters(
        params,
        options,
        seed=seeds[index],
        subseed=subseeds[index],
        clip_skip=clip_skip,
        model_name=context.model_name,
        model_hash=context.model_hash,
        vae_name=context.vae_name,
        vae_hash=context.vae_hash,
        version=context.version,
        extra=extra,
    )
    return create_infotext(prompts[index], negatives[index], values)


def _result_parameters(params: Txt2ImgParams, context: GenerationContext, clip_skip: int, job_timestamp: str) -> dict[str, Any]:
    values = dict(params.__dict__)
    values.update(
        sd_model_name=context.model_name,
        sd_model_hash=context.model_hash,
        sd_vae_name=context.vae_name,
        clip_skip=clip_skip,
        job_timestamp=job_timestamp,
        version=context.version,
    )
    return values


def _add_grid(processed: Processed, params: Txt2ImgParams, options: Options, writer: OutputWriter, context: GenerationContext) -> None:
    """A1111 makes a grid when a request produced more than one image."""
    if len(processed.images) < 2:
        return
    grid = image_grid(processed.images, rows=None)
    if options.return_grid:
        processed.images.insert(0, grid)
        processed.infotexts.insert(0, processed.infotexts[0])
        processed.index_of_first_image = 1
    if options.grid_save and not params.do_not_save_grid:
        writer.save_grid(grid, processed.infotexts[processed.index_of_first_image], params, processed.seed, context)
