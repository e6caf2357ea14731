"""The Gradio UI: a quicksettings bar (checkpoint with refresh) and the txt2img tab.

The full A1111 UI (img2img, extras, PNG info, settings, extensions) is built on this in later work;
this module keeps to what generating an image needs.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from modules.app.context import AppContext
from modules.app.options import OptionError
from modules.generation.params import ParameterError, Txt2ImgParams
from modules.models.download import STABLE_DIFFUSION_15, DownloadError, download, network_available
from modules.models.safe_load import CheckpointError
from modules.sampling.samplers import SAMPLERS
from modules.sampling.schedules import SCHEDULES

log = logging.getLogger(__name__)


def _status_html(context: AppContext) -> str:
    """A notice under the quicksettings: no checkpoint, a load error, or the demo model."""
    models = context.models
    if not models.checkpoints:
        folder = html.escape(str(context.paths.checkpoint_dirs[0]))
        return (
            "<div class='notice'>No checkpoint found. Put a Stable Diffusion checkpoint (.safetensors or .ckpt) into "
            f"<code>{folder}</code> and press 🔄, or start with <code>--demo-model</code>.</div>"
        )
    parts = []
    if context.load_error:
        parts.append(f"<div class='notice error'>{html.escape(context.load_error)}</div>")
    if context.demo_model is not None and models.info is not None and models.info.filename == context.demo_model:
        parts.append("<div class='notice'>Demo model loaded: images are noise from a tiny random-weight checkpoint.</div>")
    return "".join(parts)


def build_ui(context: AppContext) -> gr.Blocks:
    """Create the Blocks app bound to `context`."""
    defaults = Txt2ImgParams()
    with gr.Blocks(title="Stable Diffusion", analytics_enabled=False) as demo:
        with gr.Row(elem_id="quicksettings"):
            checkpoint = gr.Dropdown(
                label="Stable Diffusion checkpoint",
                choices=context.models.titles(),
                value=context.models.info.title if context.models.info else None,
                elem_id="setting_sd_model_checkpoint",
                scale=4,
            )
            refresh = gr.Button("🔄", elem_id="refresh_sd_model_checkpoint", scale=0, min_width=40)
            vae = gr.Dropdown(
                label="SD VAE",
                choices=context.models.vae_choices(),
                value=context.options.sd_vae,
                elem_id="setting_sd_vae",
                scale=2,
            )
        status = gr.HTML(_status_html(context), elem_id="model_status")
        offer_download = not context.models.checkpoints and network_available()
        download_button = gr.Button(f"Download {STABLE_DIFFUSION_15.title}", visible=offer_download, elem_id="download_sd15")

        with gr.Tab("txt2img", elem_id="tab_txt2img"):
            with gr.Row():
                with gr.Column(scale=4):
                    prompt = gr.Textbox(
                        label="Prompt", lines=3, elem_id="txt2img_prompt", placeholder="Prompt (press Ctrl+Enter to generate)"
                    )
                    negative = gr.Textbox(label="Negative prompt", lines=2, elem_id="txt2img_neg_prompt")
                generate = gr.Button("Generate", variant="primary", elem_id="txt2img_generate", scale=1)
            with gr.Row():
                with gr.Column():
                    with gr.Row():
                        sampler = gr.Dropdown(
                            label="Sampling method", choices=list(SAMPLERS), value=defaults.sampler_name, elem_id="txt2img_sampling"
                        )
                        scheduler = gr.Dropdown(
                            label="Schedule type", choices=list(SCHEDULES), value=defaults.scheduler, elem_id="txt2img_scheduler"
                        )
                    steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Sampling steps", elem_id="txt2img_steps")
                    with gr.Row():
                        width = gr.Slider(64, 2048, value=defaults.width, step=8, label="Width", elem_id="txt2img_width")
                        height = gr.Slider(64, 2048, value=defaults.height, step=8, label="Height", elem_id="txt2img_height")
                    with gr.Row():
                        batch_count = gr.Slider(1, 100, value=1, step=1, label="Batch count", elem_id="txt2img_batch_count")
                        batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size", elem_id="txt2img_batch_size")
                    cfg_scale = gr.Slider(1.0, 30.0, value=defaults.cfg_scale, step=0.5, label="CFG Scale", elem_id="txt2img_cfg_scale")
                    with gr.Row():
                        seed = gr.Number(label="Seed", value=-1, precision=0, elem_id="txt2img_seed")
                        subseed = gr.Number(label="Variation seed", value=-1, precision=0, elem_id="txt2img_subseed")
                        subseed_strength = gr.Slider(
                            0.0, 1.0, value=0.0, step=0.01, label="Variation strength", elem_id="txt2img_subseed_strength"
                        )
                with gr.Column():
                    gallery = gr.Gallery(label="Output", format="png", columns=2, elem_id="txt2img_gallery", type="pil")
                    infotext = gr.Textbox(label="Generation parameters", lines=4, interactive=False, elem_id="txt2img_infotext")
                    info_html = gr.HTML(elem_id="txt2img_html_info")

        inputs = [
            prompt,
            negative,
            sampler,
            scheduler,
            steps,
            width,
            height,
            batch_count,
            batch_size,
            cfg_scale,
            seed,
            subseed,
            subseed_strength,
        ]

        def on_generate(*values: Any) -> tuple[Any, str, str]:
            names = [
                "prompt",
                "negative_prompt",
                "sampler_name",
                "scheduler",
                "steps",
                "width",
                "height",
                "n_iter",
                "batch_size",
                "cfg_scale",
                "seed",
                "subseed",
                "subseed_strength",
            ]
            try:
                params = Txt2ImgParams.from_request(dict(zip(names, values, strict=True)))
                processed = context.run_txt2img(params)
            except (ParameterError, OptionError, CheckpointError, ValueError) as error:
                return gr.update(), "", f"<div class='error'>{html.escape(str(error))}</div>"
            comments = "".join(f"<p>{html.escape(comment)}</p>" for comment in processed.comments)
            if processed.interrupted:
                comments += "<p>Interrupted.</p>"
            first = processed.infotexts[processed.index_of_first_image] if processed.infotexts else ""
            return processed.images, first, comments

        generate.click(on_generate, inputs=inputs, outputs=[gallery, infotext, info_html])
        prompt.submit(on_generate, inputs=inputs, outputs=[gallery, infotext, info_html])

        def on_refresh() -> tuple[Any, str]:
            context.models.refresh()
            current = context.models.info.title if context.models.info else None
            return gr.update(choices=context.models.titles(), value=current), _status_html(context)

        def on_refresh_vae() -> Any:
            return gr.update(choices=context.models.vae_choices())

        def on_checkpoint(title: str) -> tuple[Any, str]:
            if not title:
                return gr.update(), _status_html(context)
            try:
                context.switch_model(title)
                context.load_error = None
            except CheckpointError as error:
                context.load_error = f"Could not load {title}: {error}. The previous model stays loaded."
            current = context.models.info.title if context.models.info else None
            return gr.update(value=current), _status_html(context)

        def on_vae(name: str) -> str:
            try:
                context.options.set("sd_vae", name)
                context.options.save()
                if context.models.info is not None:
                    context.jobs.run(lambda job: context.ensure_model(), name="switch VAE")
                context.load_error = None
            except (OptionError, CheckpointError) as error:
                context.load_error = f"Could not use VAE {name}: {error}"
            return _status_html(context)

        def on_download(progress: gr.Progress = gr.Progress()) -> tuple[Any, str, Any]:  # noqa: B008 - Gradio's API
            def report(done: int, total: int | None) -> None:
                if total:
                    progress(done / total, desc=f"{done / 2**30:.2f} of {total / 2**30:.2f} GiB")

            try:
                path = download(STABLE_DIFFUSION_15, context.paths.checkpoint_dirs[0], report)
            except DownloadError as error:
                return gr.update(), f"<div class='notice error'>{html.escape(str(error))}</div>", gr.update()
            context.models.refresh()
            choice, notice = on_checkpoint(context.models.find(path.name).title)
            return choice, notice, gr.update(visible=False)

        refresh.click(on_refresh, outputs=[checkpoint, status])
        refresh.click(on_refresh_vae, outputs=[vae])
        vae.input(on_vae, inputs=[vae], outputs=[status])
        download_button.click(on_download, outputs=[checkpoint, status, download_button])
        checkpoint.input(on_checkpoint, inputs=[checkpoint], outputs=[checkpoint, status])
    return demo
