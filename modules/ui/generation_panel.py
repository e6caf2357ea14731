"""The generation panel shared by txt2img and img2img: prompts with token counters, Generate /
Interrupt / Skip, styles, sampler and schedule, size with swap, batch, CFG, seed with its buttons and
variation extras, the Script dropdown, and the results column.

Only the layout lives here; `generation_events` wires the behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from modules.generation.params import Txt2ImgParams
from modules.sampling.samplers import SAMPLERS
from modules.sampling.schedules import SCHEDULES
from modules.ui.results_panel import ResultsPanel, build_results_panel
from modules.ui.ui_config import UiConfig

RANDOM_SEED_SYMBOL = "🎲"
REUSE_SEED_SYMBOL = "♻️"
PASTE_SYMBOL = "↙️"
SWAP_SYMBOL = "⇅"
APPLY_STYLE_SYMBOL = "📋"
SAVE_STYLE_SYMBOL = "💾"
REFRESH_SYMBOL = "🔄"


@dataclass
class GenerationPanel:
    """The components of one tab's generation controls, by A1111 parameter name where one exists."""

    tab: str
    fields: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: Any = None
    negative_tokens: Any = None
    generate: Any = None
    interrupt: Any = None
    skip: Any = None
    paste: Any = None
    styles_apply: Any = None
    styles_refresh: Any = None
    style_name: Any = None
    style_save: Any = None
    swap_size: Any = None
    seed_random: Any = None
    seed_reuse: Any = None
    subseed_random: Any = None
    subseed_reuse: Any = None
    seed_extras: Any = None
    seed_extras_row: Any = None
    script: Any = None
    script_container: Any = None
    script_inputs: list[Any] = field(default_factory=list)  # the Script dropdown, then script arguments
    parameters_column: Any = None
    results: ResultsPanel | None = None
    extra_networks: Any = None

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)


def _slider(config: UiConfig, tab: str, label: str, elem: str, **kwargs: Any) -> gr.Slider:
    return gr.Slider(label=label, elem_id=f"{tab}_{elem}", **config.apply(tab, label, kwargs))


def _tool_button(symbol: str, elem_id: str, purpose: str) -> gr.Button:
    """A small square icon button. `purpose` documents it here; the page script (assets/script.js) shows
    the same text as its hover title."""
    del purpose
    return gr.Button(symbol, elem_id=elem_id, elem_classes=["tool"], scale=0, min_width=40)


def build_prompt_row(panel: GenerationPanel, config: UiConfig, style_names: list[str]) -> None:
    """The top row: prompt boxes with token counters on the left, actions and styles on the right."""
    tab = panel.tab
    with gr.Row(elem_id=f"{tab}_toprow"):
        with gr.Column(scale=6, elem_id=f"{tab}_prompt_container"):
            panel.fields["prompt"] = gr.Textbox(
                label="Prompt",
                lines=3,
                elem_id=f"{tab}_prompt",
                placeholder="Prompt (press Ctrl+Enter to generate, Alt+Enter to skip, Esc to interrupt)",
                **config.apply(tab, "Prompt", {"value": ""}),
            )
            panel.prompt_tokens = gr.HTML("<span>0/75</span>", elem_id=f"{tab}_token_counter", elem_classes=["token-counter"])
            panel.fields["negative_prompt"] = gr.Textbox(
                label="Negative prompt",
                lines=2,
                elem_id=f"{tab}_neg_prompt",
                placeholder="Negative prompt (press Ctrl+Enter to generate)",
                **config.apply(tab, "Negative prompt", {"value": ""}),
            )
            panel.negative_tokens = gr.HTML("<span>0/75</span>", elem_id=f"{tab}_negative_token_counter", elem_classes=["token-counter"])
        with gr.Column(scale=2, elem_id=f"{tab}_actions_column"):
            with gr.Row(elem_id=f"{tab}_generate_box"):
                panel.generate = gr.Button("Generate", variant="primary", elem_id=f"{tab}_generate")
                panel.interrupt = gr.Button("Interrupt", elem_id=f"{tab}_interrupt", visible=False, variant="stop")
                panel.skip = gr.Button("Skip", elem_id=f"{tab}_skip", visible=False)
            with gr.Row(elem_id=f"{tab}_tools"):
                panel.paste = _tool_button(PASTE_SYMBOL, f"{tab}_paste", "Read generation parameters from prompt or last generation")
                panel.styles_apply = _tool_button(APPLY_STYLE_SYMBOL, f"{tab}_style_apply", "Apply the selected styles to the prompt")
                panel.style_save = _tool_button(SAVE_STYLE_SYMBOL, f"{tab}_style_create", "Save the prompt as a style")
            with gr.Row(elem_id=f"{tab}_styles_row"):
                panel.fields["styles"] = gr.Dropdown(
                    label="Styles", choices=style_names, value=[], multiselect=True, elem_id=f"{tab}_styles", scale=4
                )
                panel.styles_refresh = _tool_button(REFRESH_SYMBOL, f"{tab}_styles_refresh", "Reload styles.csv")
            panel.style_name = gr.Textbox(label="Style name", elem_id=f"{tab}_style_name", placeholder="Name for 💾")


def build_parameters(panel: GenerationPanel, config: UiConfig, *, size_row_extra=None, scripts=None) -> None:
    """Sampler, steps, size, batch, CFG, seed and the script area (inside the caller's column)."""
    tab = panel.tab
    defaults = Txt2ImgParams()
    fields = panel.fields
    with gr.Row(elem_id=f"{tab}_sampler_row"):
        fields["sampler_name"] = gr.Dropdown(
            label="Sampling method",
            choices=list(SAMPLERS),
            elem_id=f"{tab}_sampling",
            **config.apply(tab, "Sampling method", {"value": defaults.sampler_name}),
        )
        fields["scheduler"] = gr.Dropdown(
            label="Schedule type",
            choices=list(SCHEDULES),
            elem_id=f"{tab}_scheduler",
            **config.apply(tab, "Schedule type", {"value": defaults.scheduler}),
        )
    fields["steps"] = _slider(config, tab, "Sampling steps", "steps", minimum=1, maximum=150, step=1, value=defaults.steps)
    with gr.Row(elem_id=f"{tab}_size_row"):
        with gr.Column(scale=4):
            fields["width"] = _slider(config, tab, "Width", "width", minimum=64, maximum=2048, step=8, value=defaults.width)
            fields["height"] = _slider(config, tab, "Height", "height", minimum=64, maximum=2048, step=8, value=defaults.height)
        panel.swap_size = _tool_button(SWAP_SYMBOL, f"{tab}_res_switch_btn", "Swap width and height")
        with gr.Column(scale=2):
            fields["n_iter"] = _slider(config, tab, "Batch count", "batch_count", minimum=1, maximum=100, step=1, value=1)
            fields["batch_size"] = _slider(config, tab, "Batch size", "batch_size", minimum=1, maximum=8, step=1, value=1)
    fields["cfg_scale"] = _slider(config, tab, "CFG Scale", "cfg_scale", minimum=1.0, maximum=30.0, step=0.5, value=defaults.cfg_scale)
    if size_row_extra is not None:
        size_row_extra()
    with gr.Row(elem_id=f"{tab}_seed_row"):
        fields["seed"] = gr.Number(label="Seed", precision=0, elem_id=f"{tab}_seed", scale=4, **config.apply(tab, "Seed", {"value": -1}))
        panel.seed_random = _tool_button(RANDOM_SEED_SYMBOL, f"{tab}_random_seed", "Set seed to -1 (a new random seed every time)")
        panel.seed_reuse = _tool_button(REUSE_SEED_SYMBOL, f"{tab}_reuse_seed", "Reuse the seed of the selected image")
        panel.seed_extras = gr.Checkbox(label="Extra", value=False, elem_id=f"{tab}_subseed_show", scale=0, min_width=80)
    with gr.Group(visible=False, elem_id=f"{tab}_seed_extras") as panel.seed_extras_row:
        with gr.Row():
            fields["subseed"] = gr.Number(label="Variation seed", value=-1, precision=0, elem_id=f"{tab}_subseed", scale=4)
            panel.subseed_random = _tool_button(RANDOM_SEED_SYMBOL, f"{tab}_random_subseed", "Random variation seed")
            panel.subseed_reuse = _tool_button(REUSE_SEED_SYMBOL, f"{tab}_reuse_subseed", "Reuse the variation seed")
            fields["subseed_strength"] = gr.Slider(
                0.0, 1.0, value=0.0, step=0.01, label="Variation strength", elem_id=f"{tab}_subseed_strength", scale=4
            )
        with gr.Row():
            fields["seed_resize_from_w"] = gr.Slider(
                0, 2048, value=0, step=8, label="Resize seed from width", elem_id=f"{tab}_seed_resize_from_w"
            )
            fields["seed_resize_from_h"] = gr.Slider(
                0, 2048, value=0, step=8, label="Resize seed from height", elem_id=f"{tab}_seed_resize_from_h"
            )
    panel.script = gr.Dropdown(label="Script", choices=["None"], value="None", elem_id=f"{tab}_script")
    panel.script_container = gr.Column(elem_id=f"{tab}_script_container")
    if scripts is not None:
        from modules.plugins.ui_scripts import render_scripts

        render_scripts(panel, scripts)


def build_generation_panel(
    tab: str,
    config: UiConfig,
    style_names: list[str],
    *,
    allow_open_folder: bool,
    before_parameters=None,
    size_row_extra=None,
    extra_networks_source=None,
    scripts=None,
) -> GenerationPanel:
    """Lay out a full tab: prompt row, then parameters (left) and results (right).

    With `scripts` (the tab's `ScriptRunner`) the Script dropdown lists its scripts and every script's
    ui() is rendered under it; `panel.script_inputs` then holds their components.

    `before_parameters` is called inside the left column first (img2img puts its image inputs there);
    `size_row_extra` after the CFG slider (img2img's denoising strength). With an
    `extra_networks_source` (`modules.ui.extra_networks.ExtraNetworksSource`) the extra-networks panel
    sits under the prompt row.
    """
    panel = GenerationPanel(tab)
    build_prompt_row(panel, config, style_names)
    if extra_networks_source is not None:
        from modules.ui.extra_networks import build_extra_networks_panel

        panel.extra_networks = build_extra_networks_panel(tab, panel.fields["prompt"], extra_networks_source)
    with gr.Row(elem_id=f"{tab}_settings_and_results"):
        with gr.Column(scale=1, elem_id=f"{tab}_settings") as panel.parameters_column:
            if before_parameters is not None:
                before_parameters()
            build_parameters(panel, config, size_row_extra=size_row_extra, scripts=scripts)
        with gr.Column(scale=1, elem_id=f"{tab}_results"):
            panel.results = build_results_panel(tab, allow_open_folder=allow_open_folder)
    return panel
