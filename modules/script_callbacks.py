"""A1111's `modules.script_callbacks` for extensions: registration functions and parameter classes.

Each `on_*` function adds a callback to the app's registry (modules/plugins/callbacks.py), attributed
to the script file being imported. When each kind is fired:

- on_app_started(demo, app): once, after the web app is built
- on_model_loaded(sd_model): when a job first runs on a newly loaded model
- on_ui_tabs() -> [(blocks, title, elem_id)], on_ui_settings(), on_before_ui(): while the UI is built
- on_before_image_saved(ImageSaveParams), on_image_saved(ImageSaveParams): around `images.save_image`
- on_cfg_denoiser(CFGDenoiserParams), on_cfg_denoised(CFGDenoisedParams),
  on_cfg_after_cfg(AfterCFGCallbackParams): every sampling step, in the CFG denoiser
- on_image_grid(ImageGridLoopParams): in `images.image_grid`
- on_script_unloaded(): when the server stops
- on_list_optimizers(list), on_extra_noise(ExtraNoiseParams), on_before_token_counter(...),
  on_before_component / on_after_component(component, **kwargs), on_infotext_pasted(infotext, params)

A thin facade; core code never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modules.plugins.callbacks import (
    BeforeTokenCounterParams,
    ExtraNoiseParams,
    ImageGridLoopParams,
    ImageSaveParams,
    UiTrainTabParams,
    loading_script,
    registry,
)
from modules.sampling.denoiser import AfterCFGCallbackParams, CFGDenoisedParams, CFGDenoiserParams

__all__ = [
    "AfterCFGCallbackParams",
    "BeforeTokenCounterParams",
    "CFGDenoisedParams",
    "CFGDenoiserParams",
    "ExtraNoiseParams",
    "ImageGridLoopParams",
    "ImageSaveParams",
    "UiTrainTabParams",
]


def _adder(kind: str) -> Callable[..., None]:
    def add(callback: Callable[..., Any], *, name: str | None = None) -> None:
        registry.add(kind, callback, name=name)

    add.__name__ = "on_" + kind.removeprefix("callbacks_")
    add.__doc__ = f"Register `callback` in {kind}."
    return add


on_app_started = _adder("callbacks_app_started")
on_model_loaded = _adder("callbacks_model_loaded")
on_ui_tabs = _adder("callbacks_ui_tabs")
on_ui_train_tabs = _adder("callbacks_ui_train_tabs")
on_ui_settings = _adder("callbacks_ui_settings")
on_before_ui = _adder("callbacks_before_ui")
on_before_image_saved = _adder("callbacks_before_image_saved")
on_image_saved = _adder("callbacks_image_saved")
on_extra_noise = _adder("callbacks_extra_noise")
on_cfg_denoiser = _adder("callbacks_cfg_denoiser")
on_cfg_denoised = _adder("callbacks_cfg_denoised")
on_cfg_after_cfg = _adder("callbacks_cfg_after_cfg")
on_before_component = _adder("callbacks_before_component")
on_after_component = _adder("callbacks_after_component")
on_image_grid = _adder("callbacks_image_grid")
on_infotext_pasted = _adder("callbacks_infotext_pasted")
on_script_unloaded = _adder("callbacks_script_unloaded")
on_before_reload = _adder("callbacks_before_reload")
on_list_optimizers = _adder("callbacks_list_optimizers")
on_list_unets = _adder("callbacks_list_unets")
on_before_token_counter = _adder("callbacks_before_token_counter")


def remove_current_script_callbacks() -> None:
    """Drop the callbacks of the script file being imported (A1111 calls this before reloading one)."""
    loading = loading_script.get()
    if loading is not None:
        registry.remove_script(loading[0])


def remove_callbacks_for_function(callback: Callable[..., Any]) -> None:
    registry.remove_function(callback)


def clear_callbacks() -> None:
    registry.clear()


def app_started_callback(demo: Any, app: Any) -> None:
    registry.fire("callbacks_app_started", demo, app)


def model_loaded_callback(sd_model: Any) -> None:
    registry.fire("callbacks_model_loaded", sd_model)


def ui_tabs_callback() -> list[Any]:
    from modules.plugins.callbacks import extension_ui_tabs

    return extension_ui_tabs()


def ui_settings_callback() -> None:
    registry.fire("callbacks_ui_settings")


def before_ui_callback() -> None:
    registry.fire("callbacks_before_ui")


def image_grid_callback(params: ImageGridLoopParams) -> None:
    registry.fire("callbacks_image_grid", params)


def before_image_saved_callback(params: ImageSaveParams) -> None:
    registry.fire("callbacks_before_image_saved", params)


def image_saved_callback(params: ImageSaveParams) -> None:
    registry.fire("callbacks_image_saved", params)


def script_unloaded_callback() -> None:
    registry.fire("callbacks_script_unloaded")


def list_optimizers_callback() -> list[Any]:
    from modules.plugins.callbacks import list_optimizers

    return list_optimizers()
