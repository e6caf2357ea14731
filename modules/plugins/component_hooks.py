"""A1111's before_component / after_component: extensions hear about every Gradio component of the page.

`component_hooks(scripts)` is a context manager the UI builder holds for exactly the time it builds the
page. While it is open, every `gradio.components.Component` created on the building thread is announced:

- before its initialiser runs: `on_before_component(component, **kwargs)` callbacks, then the current
  tab's scripts (`Script.before_component` and `Script.on_before_component(callback, elem_id=...)`)
- after its initialiser ran (it is already placed in the layout, so a component an extension creates
  here lands right after it): `on_after_component(component, **kwargs)` callbacks, then the scripts'
  `after_component` and their `on_after_component` callbacks for that elem_id

`kwargs` are the keyword arguments Gradio's base initialiser receives (elem_id, label, value, ...). A
callback or script that raises is logged with its extension's name and skipped. The wrapper around the
initialiser is removed when the block exits, also on error, so nothing is announced afterwards.
`current_scripts(runner)` names the tab whose scripts hear about components (A1111's `scripts_current`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from gradio.components.base import Component

from modules.plugins.callbacks import registry
from modules.plugins.script_base import OnComponent
from modules.plugins.script_runner import guarded

_state: dict[str, Any] = {"thread": None, "runner": None, "original": None}


@contextlib.contextmanager
def component_hooks() -> Iterator[None]:
    """Announce components created on this thread until the block exits (see the module docstring)."""
    if _state["original"] is not None:
        yield  # already building (nested call): the outer block owns the wrapper
        return
    original = Component.__dict__["__init__"]

    def announcing_init(component: Any, *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() != _state["thread"]:
            original(component, *args, **kwargs)
            return
        _announce("before", component, kwargs)
        original(component, *args, **kwargs)
        _announce("after", component, kwargs)

    _state.update(thread=threading.get_ident(), original=original)
    Component.__init__ = announcing_init
    try:
        yield
    finally:
        Component.__init__ = original
        _state.update(thread=None, original=None, runner=None)


@contextlib.contextmanager
def current_scripts(runner: Any) -> Iterator[None]:
    """Let `runner`'s scripts (a `ScriptRunner`, or None) hear about the components built in the block."""
    previous = _state["runner"]
    _state["runner"] = runner
    try:
        yield
    finally:
        _state["runner"] = previous


def hooks_installed() -> bool:
    """Whether components are being announced right now (only while the UI is built)."""
    return _state["original"] is not None


def announce_existing(runner: Any, components: list[Any]) -> None:
    """Announce already created components as "after" events to the on_after_component callbacks and
    `runner`'s scripts, with their elem_id and label. Called by the script area of a generation panel
    built outside `component_hooks` (a panel built on its own), so its scripts still hear about the
    tab's fields once; inside the page build every component is announced as it is created instead."""
    with current_scripts(runner):
        for component in components:
            kwargs = {"elem_id": getattr(component, "elem_id", None), "label": getattr(component, "label", None)}
            _announce("after", component, kwargs)


def _announce(moment: str, component: Any, kwargs: dict[str, Any]) -> None:
    registry.fire(f"callbacks_{moment}_component", component, **kwargs)
    runner = _state["runner"]
    if runner is None:
        return
    elem_id = kwargs.get("elem_id")
    for script in list(runner.scripts):
        method = script.before_component if moment == "before" else script.after_component
        guarded(script, f"{moment}_component()", method, component, **kwargs)
        wanted_list = script.on_before_component_elem_id if moment == "before" else script.on_after_component_elem_id
        for wanted, callback in list(wanted_list or []):
            if elem_id is not None and wanted == elem_id:
                guarded(script, f"on_{moment}_component callback", callback, OnComponent(component=component))
