"""The Gradio UI: quicksettings bar, then the tabs A1111 users know — txt2img, img2img (with its
sub-tabs), Extras, PNG Info, Settings, Extensions — plus tabs that extensions provide.

Each tab lives in its own module; this one lays them out and connects the send-to buttons between
them. Extension tabs come from `context.ui_tab_providers` when present: callables returning
`(blocks, title, elem_id)` triples, called once while the UI is built.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from modules.app.context import AppContext
from modules.models.download import STABLE_DIFFUSION_15, DownloadError, download, network_available
from modules.plugins.component_hooks import component_hooks, current_scripts
from modules.plugins.ui_scripts import wire_script_paste
from modules.ui.extensions_tab import build_extensions_tab
from modules.ui.extras_tab import build_extras_tab
from modules.ui.img2img_tab import build_img2img_tab
from modules.ui.pnginfo_tab import build_pnginfo_tab
from modules.ui.quicksettings import build_quicksettings, status_html, wire_quicksettings
from modules.ui.results_panel import GenerationResult
from modules.ui.send_to import open_image, paste_outputs, send_updates
from modules.ui.settings_tab import build_settings_tab, wire_settings_tab
from modules.ui.styles import StyleDatabase
from modules.ui.txt2img_tab import build_txt2img_tab
from modules.ui.ui_config import UiConfig

log = logging.getLogger(__name__)

LOCAL_HOSTS = {None, "", "127.0.0.1", "localhost", "::1"}


def bound_to_localhost(context: AppContext) -> bool:
    flags = context.flags
    return not getattr(flags, "listen", False) and getattr(flags, "server_name", None) in LOCAL_HOSTS


def _extension_tabs(context: AppContext) -> list[tuple[Any, str, str]]:
    tabs = []
    for provider in getattr(context, "ui_tab_providers", []) or []:
        try:
            tabs.extend(provider() or [])
        except Exception:  # noqa: BLE001 - a broken extension must not take the UI down
            log.exception("an extension's UI tabs failed to build")
    return tabs


def build_ui(context: AppContext) -> gr.Blocks:
    """Create the Blocks app bound to `context`. While it is built, extensions hear about every
    component (on_before_component / on_after_component); the hook is gone once this returns."""
    with component_hooks():
        return _build_page(context)


def _build_page(context: AppContext) -> gr.Blocks:
    scripts = getattr(context, "scripts", None)
    extension_tabs = _extension_tabs(context)
    config = UiConfig(context.paths.ui_config_file)
    styles = StyleDatabase(context.paths.styles_file)
    local = bound_to_localhost(context)
    with gr.Blocks(title="Stable Diffusion", analytics_enabled=False) as demo:
        with gr.Row(elem_id="quicksettings"):
            quick = build_quicksettings(context)
        status = gr.HTML(lambda: status_html(context), elem_id="model_status")
        offer_download = not context.models.checkpoints and network_available()
        download_button = gr.Button(f"Download {STABLE_DIFFUSION_15.title}", visible=offer_download, elem_id="download_sd15")

        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("txt2img", id="txt2img", elem_id="tab_txt2img"), current_scripts(scripts and scripts.txt2img):
                txt2img = build_txt2img_tab(context, config, styles, allow_open_folder=local)
            with gr.Tab("img2img", id="img2img", elem_id="tab_img2img"), current_scripts(scripts and scripts.img2img):
                img2img, img2img_inputs = build_img2img_tab(context, config, styles, allow_open_folder=local)
            with gr.Tab("Extras", id="extras", elem_id="tab_extras"):
                extras = build_extras_tab(context)
            with gr.Tab("PNG Info", id="pnginfo", elem_id="tab_pnginfo"):
                pnginfo = build_pnginfo_tab()
            for blocks, title, elem_id in extension_tabs:
                with gr.Tab(title, id=elem_id, elem_id=f"tab_{elem_id}"):
                    blocks.render()
            with gr.Tab("Settings", id="settings", elem_id="tab_settings"):
                settings = build_settings_tab(context)
            with gr.Tab("Extensions", id="extensions", elem_id="tab_extensions"):
                build_extensions_tab(context)

        wire_quicksettings(quick, context, status)
        wire_settings_tab(settings, context, quick.components)
        _wire_send_buttons(tabs, txt2img, img2img, img2img_inputs, extras, pnginfo)
        wire_script_paste(txt2img, img2img, pnginfo, scripts)

        def on_download(progress: gr.Progress = gr.Progress()) -> tuple[Any, str, Any]:  # noqa: B008 - Gradio's API
            def report(done: int, total: int | None) -> None:
                if total:
                    progress(done / total, desc=f"{done / 2**30:.2f} of {total / 2**30:.2f} GiB")

            try:
                path = download(STABLE_DIFFUSION_15, context.paths.checkpoint_dirs[0], report)
            except DownloadError as error:
                return gr.update(), f"<div class='notice error'>{html.escape(str(error))}</div>", gr.update()
            context.models.refresh()
            title = context.models.find(path.name).title
            context.switch_model(title)
            return gr.update(choices=context.models.titles(), value=title), status_html(context), gr.update(visible=False)

        checkpoint = quick.components.get("sd_model_checkpoint")
        download_button.click(on_download, outputs=[checkpoint or status, status, download_button])
    config.save_new_keys()
    return demo


def _wire_send_buttons(tabs, txt2img, img2img, img2img_inputs, extras, pnginfo) -> None:
    """Send-to buttons under both galleries and on PNG Info."""
    img2img_outputs = paste_outputs(img2img)
    txt2img_outputs = paste_outputs(txt2img)
    sub_tabs = img2img_inputs.sub_tabs
    for source in (txt2img, img2img):
        results = source.results

        def to_img2img(result: GenerationResult, selected: int | None, target=img2img_inputs.image, sub_id="img2img", editor=False):
            return send_updates(
                result.image(selected),
                result.infotext(selected),
                tabs=tabs,
                tab_id="img2img",
                panel=img2img,
                image_target=target,
                as_editor=editor,
                sub_tabs=sub_tabs,
                sub_tab_id=sub_id,
            )

        state = [results.result, results.selected]
        results.send_to_img2img.click(to_img2img, inputs=state, outputs=[tabs, sub_tabs, img2img_inputs.image, *img2img_outputs])
        results.send_to_inpaint.click(
            lambda r, s: to_img2img(r, s, img2img_inputs.inpaint, "inpaint", True),
            inputs=state,
            outputs=[tabs, sub_tabs, img2img_inputs.inpaint, *img2img_outputs],
        )
        results.send_to_extras.click(
            lambda r, s: send_updates(r.image(s), "", tabs=tabs, tab_id="extras", image_target=extras.image),
            inputs=state,
            outputs=[tabs, extras.image],
        )

    info_inputs = [pnginfo.image, pnginfo.generation_info]
    pnginfo.send_to_txt2img.click(
        lambda path, text: send_updates(None, text, tabs=tabs, tab_id="txt2img", panel=txt2img),
        inputs=info_inputs,
        outputs=[tabs, *txt2img_outputs],
    )
    pnginfo.send_to_img2img.click(
        lambda path, text: send_updates(
            open_image(path),
            text,
            tabs=tabs,
            tab_id="img2img",
            panel=img2img,
            image_target=img2img_inputs.image,
            sub_tabs=sub_tabs,
            sub_tab_id="img2img",
        ),
        inputs=info_inputs,
        outputs=[tabs, sub_tabs, img2img_inputs.image, *img2img_outputs],
    )
    pnginfo.send_to_inpaint.click(
        lambda path, text: send_updates(
            open_image(path),
            text,
            tabs=tabs,
            tab_id="img2img",
            panel=img2img,
            image_target=img2img_inputs.inpaint,
            as_editor=True,
            sub_tabs=sub_tabs,
            sub_tab_id="inpaint",
        ),
        inputs=info_inputs,
        outputs=[tabs, sub_tabs, img2img_inputs.inpaint, *img2img_outputs],
    )
    pnginfo.send_to_extras.click(
        lambda path, text: send_updates(open_image(path), "", tabs=tabs, tab_id="extras", image_target=extras.image),
        inputs=info_inputs,
        outputs=[tabs, extras.image],
    )
