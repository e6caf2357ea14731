"""The quicksettings bar at the top of the page: the settings named by `quicksettings_list`
(by default checkpoint with refresh, SD VAE and Clip skip), each saved as soon as it changes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from modules.app.context import AppContext
from modules.app.options import OptionError
from modules.models.safe_load import CheckpointError
from modules.ui.setting_components import component_value_to_setting, setting_component

REFRESH_SYMBOL = "🔄"


@dataclass
class Quicksettings:
    components: dict[str, Any] = field(default_factory=dict)
    refresh_checkpoints: Any = None
    refresh_vae: Any = None


def status_html(context: AppContext) -> str:
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


def build_quicksettings(context: AppContext) -> Quicksettings:
    """Lay out the bar (call inside a `gr.Row`)."""
    quick = Quicksettings()
    for key in context.options.quicksettings_list:
        info = context.options.infos.get(key)
        if info is None:
            continue
        if key == "sd_model_checkpoint":
            quick.components[key] = gr.Dropdown(
                label="Stable Diffusion checkpoint",
                choices=context.models.titles(),
                value=lambda: context.models.info.title if context.models.info else None,
                elem_id="setting_sd_model_checkpoint",
                scale=4,
            )
            quick.refresh_checkpoints = gr.Button(REFRESH_SYMBOL, elem_id="refresh_sd_model_checkpoint", scale=0, min_width=40)
        elif key == "sd_vae":
            quick.components[key] = gr.Dropdown(
                label="SD VAE",
                choices=context.models.vae_choices(),
                value=lambda: context.options.sd_vae,
                elem_id="setting_sd_vae",
                scale=2,
            )
            quick.refresh_vae = gr.Button(REFRESH_SYMBOL, elem_id="refresh_sd_vae", scale=0, min_width=40)
        else:
            quick.components[key] = setting_component(key, info, context.options, scale=2)
    return quick


def wire_quicksettings(quick: Quicksettings, context: AppContext, status: Any) -> None:
    def on_refresh() -> tuple[Any, str]:
        context.models.refresh()
        current = context.models.info.title if context.models.info else None
        return gr.update(choices=context.models.titles(), value=current), status_html(context)

    def on_checkpoint(title: str) -> tuple[Any, str]:
        if title:
            try:
                context.switch_model(title)
                context.load_error = None
            except CheckpointError as error:
                context.load_error = f"Could not load {title}: {error}. The previous model stays loaded."
        current = context.models.info.title if context.models.info else None
        return gr.update(value=current), status_html(context)

    def on_vae(name: str) -> str:
        try:
            context.options.set("sd_vae", name)
            context.options.save()
            if context.models.info is not None:
                context.jobs.run(lambda job: context.ensure_model(), name="switch VAE")
            context.load_error = None
        except (OptionError, CheckpointError) as error:
            context.load_error = f"Could not use VAE {name}: {error}"
        return status_html(context)

    for key, component in quick.components.items():
        if key == "sd_model_checkpoint":
            component.input(on_checkpoint, inputs=[component], outputs=[component, status])
            quick.refresh_checkpoints.click(on_refresh, outputs=[component, status])
        elif key == "sd_vae":
            component.input(on_vae, inputs=[component], outputs=[status])
            quick.refresh_vae.click(lambda: gr.update(choices=context.models.vae_choices()), outputs=[component])
        else:
            component.input(_make_setter(context, key), inputs=[component], outputs=[status])


def _make_setter(context: AppContext, key: str):
    def set_value(value: Any) -> str:
        info = context.options.infos[key]
        try:
            context.options.set(key, component_value_to_setting(info, value))
            context.options.save()
        except OptionError as error:
            return f"<div class='notice error'>{html.escape(str(error))}</div>"
        return status_html(context)

    return set_value
