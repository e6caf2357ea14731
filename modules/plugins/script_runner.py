"""Loading script files into `Script` instances and running them, each in isolation.

`load_script_classes(files)` imports each file once; a file that raises on import is logged with its
extension's name and left out until restart. A `ScriptRunner` (one for txt2img, one for img2img)
instantiates the classes, sorts them into always-on scripts and Script-dropdown entries, builds their
UI to learn their argument slices, and gives each job a `JobScripts` that calls their hooks. A script
that raises in ui() is left out until restart; one that raises in a hook is logged and skipped for
the rest of that job, and the job goes on.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.app.jobs import Interrupted, Skipped
from modules.plugins.callbacks import loading_script
from modules.plugins.script_base import AlwaysVisible, PostprocessBatchListArgs, PostprocessImageArgs, Script, ScriptClassData

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ScriptSource:
    """A script file and the extension it belongs to ("built-in" for the app's scripts/)."""

    path: Path
    extension_name: str = "built-in"
    basedir: Path = REPO_ROOT


def script_files(paths: Any, options: Any = None, flags: Any = None) -> list[ScriptSource]:
    """The app's scripts/*.py, then each enabled extension's scripts/*.py (built-in extensions first)."""
    from modules.plugins.extensions import enabled_extensions

    root = getattr(paths, "repo_root", REPO_ROOT)
    sources = [ScriptSource(path, "built-in", root) for path in sorted((root / "scripts").glob("*.py"))]
    for extension in enabled_extensions(paths, options, flags):
        sources.extend(ScriptSource(path, extension.name, extension.path) for path in extension.script_files())
    return sources


def load_script_classes(sources: list[ScriptSource]) -> list[ScriptClassData]:
    """Import each file and collect the `Script` subclasses it defines; a failing file is logged and skipped."""
    found: list[ScriptClassData] = []
    for source in sources:
        module = _import_file(source)
        if module is None:
            continue
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Script) and value is not Script and value.__module__ == module.__name__:
                found.append(ScriptClassData(value, str(source.path), str(source.basedir), module, source.extension_name))
    return found


def _import_file(source: ScriptSource) -> Any:
    name = "extension_scripts." + "".join(char if char.isalnum() else "_" for char in f"{source.extension_name}_{source.path.stem}")
    token = loading_script.set((str(source.path), source.extension_name))
    added_path = str(source.basedir)
    sys.path.insert(0, added_path)
    try:
        spec = importlib.util.spec_from_file_location(name, source.path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {source.path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except BaseException as error:  # noqa: BLE001 - an extension may raise anything, even SystemExit
        if isinstance(error, KeyboardInterrupt):
            raise
        sys.modules.pop(name, None)
        from modules.plugins.callbacks import registry

        registry.remove_script(str(source.path))
        log.exception("extension %s: error loading script %s; it is disabled until restart", source.extension_name, source.path.name)
        return None
    finally:
        loading_script.reset(token)
        if added_path in sys.path:
            sys.path.remove(added_path)


def guarded(script: Script, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call one script method; on error log it with the extension's name. Returns (ok, result)."""
    try:
        return True, function(*args, **kwargs)
    except (Interrupted, Skipped):
        raise  # the user's Interrupt/Skip, not a script failure
    except Exception:
        log.exception("extension %s: error in %s of script %r (%s)", script.extension_name, what, _title(script), script.filename)
        return False, None


def _title(script: Script) -> str:
    try:
        return str(script.title())
    except Exception:
        return type(script).__name__


class ScriptRunner:
    """The scripts of one tab (txt2img or img2img): always-on ones and the Script dropdown's."""

    def __init__(self, classes: list[ScriptClassData], is_img2img: bool) -> None:
        self.is_img2img = is_img2img
        self.scripts: list[Script] = []
        self.alwayson_scripts: list[Script] = []
        self.selectable_scripts: list[Script] = []
        self.inputs: list[Any] = [None]
        self.ui_created = False
        for data in classes:
            script = self._instantiate(data)
            if script is None:
                continue
            ok, visibility = guarded(script, "show()", script.show, is_img2img)
            if not ok or visibility is False:
                continue
            script.alwayson = visibility is AlwaysVisible
            self.scripts.append(script)
            (self.alwayson_scripts if script.alwayson else self.selectable_scripts).append(script)
        self.alwayson_scripts.sort(key=lambda item: getattr(item, "sorting_priority", 0))

    def _instantiate(self, data: ScriptClassData) -> Script | None:
        try:
            script = data.script_class()
        except Exception:
            log.exception("extension %s: error creating script %s", data.extension_name, data.script_class.__name__)
            return None
        script.filename = data.path
        script.extension_name = data.extension_name
        script.is_txt2img = not self.is_img2img
        script.is_img2img = self.is_img2img
        script.tabname = "img2img" if self.is_img2img else "txt2img"
        ok, title = guarded(script, "title()", script.title)
        if not ok or not isinstance(title, str):
            return None
        script.name = title.lower()
        return script

    def titles(self) -> list[str]:
        return [_title(script) for script in self.selectable_scripts]

    def find(self, name: str) -> Script | None:
        """A script by its title, compared case-insensitively (the API's `script_name`)."""
        wanted = name.strip().lower()
        return next((script for script in self.scripts if script.name == wanted), None)

    def create_ui(self, build: Callable[[Script], list[Any]] | None = None) -> None:
        """Run every script's ui(is_img2img) once to learn its argument slice; `build(script)` wraps the
        call when the UI renders it (e.g. inside an accordion). A script whose ui() raises is dropped."""
        if self.ui_created:
            return
        self.ui_created = True
        for script in list(self.alwayson_scripts) + list(self.selectable_scripts):
            ok, controls = guarded(script, "ui()", build or (lambda item: item.ui(self.is_img2img)), script)
            if not ok:
                self._drop(script)
                continue
            controls = list(controls or [])
            script.controls = controls
            script.args_from = len(self.inputs)
            self.inputs.extend(controls)
            script.args_to = len(self.inputs)

    def ensure_ui(self) -> None:
        """Create the scripts' components off-page (for the API without a UI) to learn their defaults."""
        if self.ui_created:
            return
        import gradio as gr

        with gr.Blocks():
            self.create_ui()

    def _drop(self, script: Script) -> None:
        for group in (self.scripts, self.alwayson_scripts, self.selectable_scripts):
            if script in group:
                group.remove(script)

    def default_args(self) -> list[Any]:
        """The flat argument list with every component's default value (index 0: the dropdown, 0 = none)."""
        self.ensure_ui()
        values: list[Any] = [0]
        for control in self.inputs[1:]:
            values.append(getattr(control, "value", None))
        return values

    def build_args(self, script_name: str | None, script_args: list[Any], alwayson: dict[str, Any]) -> tuple[Script | None, list[Any]]:
        """A1111's API adapter: the selected dropdown script and the flat argument list.

        Raises `ValueError` naming `script_name` or `alwayson_scripts` when a script is unknown."""
        args = self.default_args()
        selected = None
        if script_name:
            selected = self.find(script_name)
            if selected is None or selected.alwayson:
                raise ValueError(f"script_name: script {script_name!r} not found; available: {', '.join(self.titles()) or 'none'}")
            args[0] = self.selectable_scripts.index(selected) + 1
            _place(args, selected, list(script_args or []))
        for name, value in (alwayson or {}).items():
            script = self.find(name)
            if script is None or not script.alwayson:
                raise ValueError(f"alwayson_scripts: always-on script {name!r} not found")
            given = value.get("args", []) if isinstance(value, dict) else value
            if not isinstance(given, list):
                raise ValueError(f"alwayson_scripts.{name}.args: expected a list")
            _place(args, script, given)
        return selected, args

    def selected_from_args(self, args: list[Any]) -> Script | None:
        """The dropdown script chosen by `args[0]` (an index, 0 = none, or a title)."""
        choice = args[0] if args else 0
        if isinstance(choice, str):
            return None if choice in ("", "None") else self.find(choice)
        index = int(choice or 0)
        return self.selectable_scripts[index - 1] if 0 < index <= len(self.selectable_scripts) else None


def _place(args: list[Any], script: Script, given: list[Any]) -> None:
    start, end = script.args_from or 0, script.args_to or 0
    for offset, value in enumerate(given[: end - start]):
        args[start + offset] = value


@dataclass
class JobScripts:
    """The always-on scripts of one job with their arguments; each method calls one A1111 hook on all
    of them. A script that raises is logged and skipped for the rest of the job."""

    runner: ScriptRunner
    script_args: list[Any]
    failed: set[int] = field(default_factory=set)

    def _each(self, what: str, call: Callable[[Script, list[Any]], Any]) -> None:
        for script in self.runner.alwayson_scripts:
            if id(script) in self.failed:
                continue
            args = self.script_args[script.args_from or 0 : script.args_to or 0]
            ok, _ = guarded(script, what, call, script, args)
            if not ok:
                self.failed.add(id(script))

    def setup(self, p: Any) -> None:
        self._each("setup", lambda script, args: script.setup(p, *args))

    def before_process(self, p: Any) -> None:
        self._each("before_process", lambda script, args: script.before_process(p, *args))

    def process(self, p: Any) -> None:
        self._each("process", lambda script, args: script.process(p, *args))

    def before_process_batch(self, p: Any, **kwargs: Any) -> None:
        self._each("before_process_batch", lambda script, args: script.before_process_batch(p, *args, **kwargs))

    def process_batch(self, p: Any, **kwargs: Any) -> None:
        self._each("process_batch", lambda script, args: script.process_batch(p, *args, **kwargs))

    def postprocess_batch(self, p: Any, images: Any, **kwargs: Any) -> None:
        self._each("postprocess_batch", lambda script, args: script.postprocess_batch(p, *args, images=images, **kwargs))

    def postprocess_batch_list(self, p: Any, pp: PostprocessBatchListArgs, **kwargs: Any) -> None:
        self._each("postprocess_batch_list", lambda script, args: script.postprocess_batch_list(p, pp, *args, **kwargs))

    def postprocess_image(self, p: Any, pp: PostprocessImageArgs) -> None:
        self._each("postprocess_image", lambda script, args: script.postprocess_image(p, pp, *args))

    def postprocess(self, p: Any, processed: Any) -> None:
        self._each("postprocess", lambda script, args: script.postprocess(p, processed, *args))
