"""The script system of one app: the loaded script classes, a runner per tab and job execution.

`ScriptSystem.load(paths, options, flags)` finds and imports the script files once at startup;
`run(params, selection, context, job)` runs one generation job with its scripts: the always-on
scripts' hooks, and a Script dropdown script's `run(p, *args)` in place of normal processing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from modules.app.jobs import Interrupted, Skipped
from modules.generation.results import Processed
from modules.plugins import runtime
from modules.plugins.callbacks import registry
from modules.plugins.processing_compat import StableDiffusionProcessing
from modules.plugins.processing_run import process_images
from modules.plugins.script_base import ScriptClassData
from modules.plugins.script_runner import JobScripts, ScriptRunner, load_script_classes, script_files

log = logging.getLogger(__name__)


@dataclass
class ScriptSelection:
    """Which scripts a request uses: A1111's API fields, or the UI's flat argument list.

    `flat_args` (from the UI) is the whole list, index 0 being the Script dropdown's choice; when it is
    None, `script_name`, `script_args` and `alwayson_scripts` ({name: {"args": [...]}}) are used."""

    script_name: str | None = None
    script_args: list[Any] = field(default_factory=list)
    alwayson_scripts: dict[str, Any] = field(default_factory=dict)
    flat_args: list[Any] | None = None


class ScriptSystem:
    """Script classes loaded at startup and the txt2img / img2img runners built from them."""

    def __init__(self, classes: list[ScriptClassData]) -> None:
        self.classes = classes
        self.txt2img = ScriptRunner(classes, is_img2img=False)
        self.img2img = ScriptRunner(classes, is_img2img=True)
        self._model_seen: Any = None

    @classmethod
    def load(cls, paths: Any, options: Any = None, flags: Any = None) -> ScriptSystem:
        """Import the app's and the enabled extensions' scripts; failures are logged and skipped."""
        try:
            sources = script_files(paths, options, flags)
        except Exception:
            log.exception("could not list the script files; starting without scripts")
            sources = []
        return cls(load_script_classes(sources))

    def runner(self, is_img2img: bool) -> ScriptRunner:
        return self.img2img if is_img2img else self.txt2img

    def check_selection(self, selection: ScriptSelection | None, is_img2img: bool) -> None:
        """Raise `ValueError` naming the field when the selection names an unknown script."""
        if selection is not None and selection.flat_args is None:
            self.runner(is_img2img).build_args(selection.script_name, selection.script_args, selection.alwayson_scripts)

    def model_loaded(self) -> None:
        """Fire on_model_loaded when the loaded model is not the one seen last (checked before each
        generation, after the job's checkpoint was loaded)."""
        model = runtime.loaded_model()
        if model is None or model == self._model_seen:
            return
        self._model_seen = model
        registry.fire("callbacks_model_loaded", model)

    def run(self, params: Any, selection: ScriptSelection | None, context: Any, job: Any) -> Processed:
        """Run one job: setup, then the dropdown script's run() or normal processing (A1111's order)."""
        p = StableDiffusionProcessing.from_params(params)
        runner = self.runner(p.is_img2img)
        selection = selection or ScriptSelection()
        if selection.flat_args is not None:
            args = list(selection.flat_args)
            selected = runner.selected_from_args(args)
        else:
            selected, args = runner.build_args(selection.script_name, selection.script_args, selection.alwayson_scripts)
        p.scripts = JobScripts(runner, args)
        p.script_args = args
        p.sd_model = runtime.loaded_model()
        p.outpath_samples = str(context.paths.outputs_dir / ("img2img-images" if p.is_img2img else "txt2img-images"))
        p.outpath_grids = str(context.paths.outputs_dir / ("img2img-grids" if p.is_img2img else "txt2img-grids"))
        runtime.set_current_job(job, context)
        try:
            p.scripts.setup(p)
            processed, failed = None, False
            if selected is not None:
                processed, failed = _run_selected(selected, p, args[selected.args_from or 0 : selected.args_to or 0])
            if processed is None:
                processed = process_images(p)
            if failed:
                processed.comments.append(f"Script {selected.name!r} failed and was skipped; see the server log.")
            return processed
        finally:
            runtime.set_current_job(None)


def _run_selected(script: Any, p: Any, args: list[Any]) -> tuple[Processed | None, bool]:
    """Call the dropdown script's run(). A ValueError means its arguments are invalid: the request
    fails with that message (422 through the API). Any other error is logged with the extension's name
    and normal processing goes ahead. Returns (result, failed)."""
    try:
        return script.run(p, *args), False
    except (Interrupted, Skipped, ValueError):
        raise
    except Exception:
        log.exception("extension %s: error in run() of script %r", script.extension_name, script.name)
        return None, True
