"""A1111's `modules.scripts` for extensions: the `Script` base class and its helper types.

`scripts_txt2img` / `scripts_img2img` are the app's runners (None before startup). A thin facade
over `modules.plugins`; core code never imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modules.plugins import runtime
from modules.plugins.callbacks import loading_script
from modules.plugins.script_base import (
    AlwaysVisible,
    OnComponent,
    PostprocessBatchListArgs,
    PostprocessImageArgs,
    Script,
    ScriptClassData,
    ScriptFile,
)

__all__ = [
    "AlwaysVisible",
    "OnComponent",
    "PostprocessBatchListArgs",
    "PostprocessImageArgs",
    "Script",
    "ScriptClassData",
    "ScriptFile",
    "basedir",
]

_REPO_ROOT = Path(__file__).resolve().parents[1]


def basedir() -> str:
    """The folder of the extension whose script is being imported (the app's folder otherwise)."""
    loading = loading_script.get()
    if loading is None:
        return str(_REPO_ROOT)
    path = Path(loading[0]).resolve()
    return str(path.parent.parent if path.parent.name == "scripts" else path.parent)


def __getattr__(name: str) -> Any:
    context = runtime.get_context()
    system = getattr(context, "scripts", None) if context is not None else None
    if name == "scripts_txt2img":
        return system.txt2img if system is not None else None
    if name == "scripts_img2img":
        return system.img2img if system is not None else None
    if name == "scripts_data":
        return list(system.classes) if system is not None else []
    raise AttributeError(f"module 'modules.scripts' has no attribute {name!r}")
