"""The txt2img tab: the generation panel bound to `AppContext.run_txt2img`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modules.app.context import AppContext
from modules.app.jobs import new_task_id
from modules.generation.params import Txt2ImgParams
from modules.plugins.ui_scripts import selection_from_values
from modules.ui.extra_networks import ExtraNetworksSource
from modules.ui.generation_events import apply_styles_to_values, field_values, wire_generation_panel
from modules.ui.generation_panel import GenerationPanel, build_generation_panel
from modules.ui.styles import StyleDatabase
from modules.ui.ui_config import UiConfig


def generation_limits(context: AppContext) -> Any:
    """The request limits from the settings, when this version of the params module has them."""
    try:
        from modules.generation.params import GenerationLimits  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return GenerationLimits.from_options(context.options)


def build_params(params_class: type, values: dict[str, Any], context: AppContext) -> Any:
    limits = generation_limits(context)
    return params_class.from_request(values, limits) if limits is not None else params_class.from_request(values)


def build_txt2img_tab(context: AppContext, config: UiConfig, styles: StyleDatabase, *, allow_open_folder: bool) -> GenerationPanel:
    """Lay out and wire the tab (call inside a `gr.Tab`)."""
    scripts = context.scripts.txt2img if getattr(context, "scripts", None) is not None else None
    panel = build_generation_panel(
        "txt2img",
        config,
        styles.names(),
        allow_open_folder=allow_open_folder,
        scripts=scripts,
        extra_networks_source=ExtraNetworksSource.from_context(context),
    )

    def make_call(data: dict[Any, Any]):
        values = apply_styles_to_values(field_values(panel, data), styles)
        params = build_params(Txt2ImgParams, values, context)
        selection = selection_from_values(panel, data)
        task_id = new_task_id()
        return (lambda: context.run_txt2img(params, task_id=task_id, scripts=selection)), task_id

    wire_generation_panel(
        panel,
        context,
        styles,
        make_call,
        extra_inputs=getattr(panel, "script_inputs", None),
        outputs_folder=outputs_folder(context, "outdir_txt2img_samples"),
    )
    return panel


def outputs_folder(context: AppContext, key: str) -> Path:
    """The folder a setting such as `outdir_txt2img_samples` names, relative to the data dir."""
    folder = Path(context.options.get(key) or "outputs")
    return folder if folder.is_absolute() else context.paths.data_dir / folder
