"""The registry behind A1111's `script_callbacks`: named lists of callbacks, fired with isolation.

Extensions register callbacks while their script files are imported (`on_cfg_denoiser(fn)` etc.);
each entry remembers the file and extension that registered it. `fire(kind, ...)` calls every entry
in registration order; one that raises is logged with its extension's name and skipped for that call,
and the others still run.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modules.sampling.denoiser import AfterCFGCallbackParams, CFGDenoisedParams, CFGDenoiserParams, DenoiserHooks

log = logging.getLogger(__name__)

CALLBACK_KINDS = (
    "callbacks_app_started",
    "callbacks_model_loaded",
    "callbacks_ui_tabs",
    "callbacks_ui_train_tabs",
    "callbacks_ui_settings",
    "callbacks_before_ui",
    "callbacks_before_image_saved",
    "callbacks_image_saved",
    "callbacks_extra_noise",
    "callbacks_cfg_denoiser",
    "callbacks_cfg_denoised",
    "callbacks_cfg_after_cfg",
    "callbacks_before_component",
    "callbacks_after_component",
    "callbacks_image_grid",
    "callbacks_infotext_pasted",
    "callbacks_script_unloaded",
    "callbacks_before_reload",
    "callbacks_list_optimizers",
    "callbacks_list_unets",
    "callbacks_before_token_counter",
)

# the script file being imported; callbacks registered meanwhile are attributed to it
loading_script: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("loading_script", default=None)


@dataclass
class ImageSaveParams:
    """Given to on_before_image_saved / on_image_saved; before saving, callbacks may change any field."""

    image: Any
    p: Any
    filename: str
    pnginfo: dict[str, Any]


@dataclass
class ExtraNoiseParams:
    """Given to on_extra_noise: `noise` may be replaced before it is added to `x`."""

    noise: Any
    x: Any
    xi: Any


@dataclass
class ImageGridLoopParams:
    """Given to on_image_grid: callbacks may change the images or the column/row counts."""

    imgs: list[Any]
    cols: int
    rows: int


@dataclass
class UiTrainTabParams:
    """Given to on_ui_train_tabs."""

    txt2img_preview_params: Any


@dataclass
class BeforeTokenCounterParams:
    """Given to on_before_token_counter: callbacks may rewrite `prompt` before tokens are counted."""

    prompt: str
    steps: int
    styles: list[str]
    is_positive: bool = True


@dataclass
class CallbackEntry:
    """One registered callback with the script file and extension that registered it."""

    script: str
    callback: Callable[..., Any]
    name: str | None = None
    extension_name: str = "built-in"


class CallbackRegistry:
    """Lists of callbacks by kind (A1111's `callbacks_*` names)."""

    def __init__(self) -> None:
        self.lists: dict[str, list[CallbackEntry]] = {kind: [] for kind in CALLBACK_KINDS}

    def add(self, kind: str, callback: Callable[..., Any], *, name: str | None = None) -> None:
        """Register `callback` under `kind`; attributed to the script file being imported, if any."""
        if kind not in self.lists:
            raise ValueError(f"unknown callback kind: {kind}")
        if not callable(callback):
            raise TypeError(f"{kind}: the callback must be callable, got {callback!r}")
        script, extension = loading_script.get() or ("unknown", "unknown")
        self.lists[kind].append(CallbackEntry(script, callback, name, extension))

    def fire(self, kind: str, *args: Any, failed: set[int] | None = None, **kwargs: Any) -> list[Any]:
        """Call every callback of `kind`; returns their results. A failing one is logged and skipped;
        with a `failed` set (one per generation) it is also skipped for the rest of that generation."""
        results = []
        for entry in list(self.lists[kind]):
            if failed is not None and id(entry) in failed:
                continue
            try:
                results.append(entry.callback(*args, **kwargs))
            except Exception:
                if failed is not None:
                    failed.add(id(entry))
                log.exception(
                    "extension %s: error in %s callback %s (from %s)", entry.extension_name, kind, _callable_name(entry), entry.script
                )
        return results

    def has(self, kind: str) -> bool:
        return bool(self.lists[kind])

    def remove_script(self, script: str) -> None:
        """Drop every callback registered by one script file."""
        for entries in self.lists.values():
            entries[:] = [entry for entry in entries if entry.script != script]

    def remove_function(self, callback: Callable[..., Any]) -> None:
        """Drop every registration of one function."""
        for entries in self.lists.values():
            entries[:] = [entry for entry in entries if entry.callback != callback]

    def clear(self) -> None:
        for entries in self.lists.values():
            entries.clear()

    def attach_denoiser(self, hooks: DenoiserHooks) -> None:
        """Add the CFG callbacks to one generation's denoiser hooks (called once per generation); a
        callback that raises is skipped for the rest of that generation."""
        failed: set[int] = set()

        def firing(kind: str) -> Callable[[CFGDenoiserParams | CFGDenoisedParams | AfterCFGCallbackParams], None]:
            return lambda params: self.fire(kind, params, failed=failed) and None

        if self.has("callbacks_cfg_denoiser"):
            hooks.before.append(firing("callbacks_cfg_denoiser"))
        if self.has("callbacks_cfg_denoised"):
            hooks.denoised.append(firing("callbacks_cfg_denoised"))
        if self.has("callbacks_cfg_after_cfg"):
            hooks.after_cfg.append(firing("callbacks_cfg_after_cfg"))


def _callable_name(entry: CallbackEntry) -> str:
    return entry.name or getattr(entry.callback, "__qualname__", repr(entry.callback))


registry = CallbackRegistry()
"""The process's callback registry (A1111 keeps one per process too)."""


def extension_ui_tabs() -> list[tuple[Any, str, str]]:
    """The tabs from on_ui_tabs callbacks, each returning [(blocks, title, elem_id), ...]; called once
    while the page is built (an `AppContext.ui_tab_providers` entry). A callback that raises, or returns
    something else, is logged with its extension's name and skipped."""
    tabs: list[tuple[Any, str, str]] = []
    for entry in list(registry.lists["callbacks_ui_tabs"]):
        try:
            result = entry.callback()
            items = [tuple(item) for item in (result or [])]
            if not all(len(item) == 3 and isinstance(item[1], str) for item in items):
                raise TypeError(f"on_ui_tabs callbacks return [(blocks, title, elem_id), ...], got {result!r}")
        except Exception:
            log.exception("extension %s: error in ui_tabs callback %s (from %s)", entry.extension_name, _callable_name(entry), entry.script)
            continue
        tabs.extend(items)  # type: ignore[arg-type]
    return tabs


def before_token_counter(prompt: str, steps: int, styles: list[str] | None = None, is_positive: bool = True) -> BeforeTokenCounterParams:
    """Fire on_before_token_counter; the returned params carry the prompt (and steps) to count."""
    params = BeforeTokenCounterParams(prompt, steps, list(styles or []), is_positive)
    registry.fire("callbacks_before_token_counter", params)
    return params


@dataclass
class AttentionOptimizer:
    """An entry of the cross-attention optimization list A1111 shows (`sd_hijack.optimizers`).

    Informational here: attention always runs through diffusers' processors; `apply`/`undo` change
    nothing. Extensions' on_list_optimizers callbacks may append their own objects with the same
    attributes (name, label, cmd_opt, priority, is_available)."""

    name: str
    label: str = ""
    cmd_opt: str = ""
    priority: int = 0

    def title(self) -> str:
        return self.name if not self.label else f"{self.name} - {self.label}"

    def is_available(self) -> bool:
        return True

    def apply(self) -> None:
        """Nothing to switch: the attention implementation is diffusers' default."""

    def undo(self) -> None:
        """Nothing to restore."""


def builtin_optimizers() -> list[AttentionOptimizer]:
    """The attention implementations this app has: PyTorch's scaled_dot_product_attention ("sdp"),
    which diffusers' attention processors use by default."""
    return [AttentionOptimizer("sdp", "scaled dot product", "opt_sdp_attention", priority=70)]


def list_optimizers() -> list[Any]:
    """The built-in optimizers plus whatever on_list_optimizers(list) callbacks append, by priority
    (highest first); called once at startup."""
    found: list[Any] = list(builtin_optimizers())
    registry.fire("callbacks_list_optimizers", found)
    return sorted(found, key=lambda item: -int(getattr(item, "priority", 0) or 0))
