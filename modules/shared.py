"""A1111's `modules.shared` for extensions: a thin facade over the running app's context.

`opts` (settings), `state` (the running job), `cmd_opts` (flags), `sd_model` (the loaded model),
`prompt_styles`, `OptionInfo` and `options_section`. Core code never imports this module.
"""

from __future__ import annotations

from typing import Any

from modules.app.options import OptionInfo
from modules.plugins import runtime
from modules.plugins.shared_compat import OptionsView, PromptStylesView, StateView, options_section

__all__ = ["OptionInfo", "opts", "state", "prompt_styles", "options_section"]

opts = OptionsView()
state = StateView()
prompt_styles = PromptStylesView()
total_tqdm = None
demo = None
hf_endpoint = "https://huggingface.co"


def __getattr__(name: str) -> Any:
    """Values that follow the app: `cmd_opts`, `sd_model`, `device`, `models_path`, `data_path`."""
    context = runtime.get_context()
    if name == "cmd_opts":
        if context is not None:
            return context.flags
        from modules.app.flags import parse_flags

        return parse_flags([])
    if name == "sd_model":
        return runtime.loaded_model()
    if name == "device":
        model = runtime.loaded_model()
        import torch

        return model.device if model is not None else torch.device("cpu")
    if name == "models_path":
        return str(context.paths.models_dir) if context is not None else "models"
    if name == "data_path":
        return str(context.paths.data_dir) if context is not None else "."
    if name == "script_path":
        from pathlib import Path

        return str(Path(__file__).resolve().parents[1])
    raise AttributeError(f"module 'modules.shared' has no attribute {name!r}")
