"""Objects behind `modules.shared`: A1111's `opts`, `state` and `prompt_styles` over the app's own.

`OptionsView` answers `opts.<key>`, `opts.data` (a dict, as in A1111), `opts.onchange`, `add_option`
and `save` from the app's `Options`. `StateView` is A1111's `state` over the current `Job`.
"""

from __future__ import annotations

import time
from typing import Any

from modules.app.options import OptionInfo, Options
from modules.plugins import runtime


class OptionsView:
    """A1111's `shared.opts` over the app's `Options` (a standalone copy before the app starts)."""

    def __init__(self) -> None:
        object.__setattr__(self, "_fallback", None)

    @property
    def options(self) -> Options:
        context = runtime.get_context()
        if context is not None:
            return context.options
        if self._fallback is None:
            object.__setattr__(self, "_fallback", Options())
        return self._fallback

    @property
    def data(self) -> dict[str, Any]:
        """Every setting and its value; a copy, so write through `opts.set` or attribute assignment."""
        return self.options.data()

    @property
    def data_labels(self) -> dict[str, OptionInfo]:
        return self.options.infos

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.options, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.options.set(name, value)

    def add_option(self, key: str, info: Any) -> None:
        """Register an extension's setting (A1111's OptionInfo objects are accepted as they are)."""
        self.options.add_option(key, _core_info(info))

    def onchange(self, key: str, func: Any, call: bool = True) -> None:
        info = self.options.infos.get(key)
        if info is not None:
            info.on_change = func
        if call:
            func()

    def same_type(self, x: Any, y: Any) -> bool:
        return x is None or y is None or type(x) is type(y)


def _core_info(info: Any) -> OptionInfo:
    if isinstance(info, OptionInfo):
        return info
    return OptionInfo(default=getattr(info, "default", None), label=getattr(info, "label", ""))


def options_section(section_identifier: tuple[str, str], options_dict: dict[str, OptionInfo]) -> dict[str, OptionInfo]:
    """A1111's helper: give every option of `options_dict` the section `(id, label)`."""
    for value in options_dict.values():
        value.section = section_identifier
    return options_dict


class StateView:
    """A1111's `shared.state`: the running job's progress and controls, read and written."""

    _fields = {
        "job_count": "job_count",
        "job_no": "job_no",
        "sampling_step": "sampling_step",
        "sampling_steps": "sampling_steps",
        "textinfo": "textinfo",
    }

    def __init__(self) -> None:
        object.__setattr__(self, "_detached", {"job": "", "job_timestamp": "", "skipped": False, "interrupted": False})

    @property
    def current(self) -> Any:
        return runtime.current_job()

    @property
    def interrupted(self) -> bool:
        job = self.current
        return bool(job.interrupted) if job is not None else False

    @property
    def skipped(self) -> bool:
        job = self.current
        return bool(job.skipped) if job is not None else False

    @property
    def current_latent(self) -> Any:
        job = self.current
        return job.current_latent if job is not None else None

    @property
    def current_image(self) -> Any:
        job = self.current
        return job.current_image if job is not None else None

    def interrupt(self) -> None:
        if self.current is not None:
            self.current.interrupt()

    def skip(self) -> None:
        if self.current is not None:
            self.current.skip()

    def nextjob(self) -> None:
        job = self.current
        if job is not None:
            job.job_no += 1
            job.sampling_step = 0

    def begin(self, job: str = "(unknown)") -> None:
        self._detached["job"] = job
        self._detached["job_timestamp"] = time.strftime("%Y%m%d%H%M%S")

    def end(self) -> None:
        self._detached["job"] = ""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        job = self.current
        if name in self._fields and job is not None:
            return getattr(job, self._fields[name])
        if name in self._fields:
            return 0 if name != "textinfo" else ""
        return self._detached.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        job = self.current
        if name in self._fields and job is not None:
            setattr(job, self._fields[name], value)
        elif name in ("interrupted", "skipped") and job is not None:
            setattr(job, name, bool(value))
        else:
            self._detached[name] = value


class PromptStylesView:
    """A1111's `shared.prompt_styles` over styles.csv."""

    def _database(self) -> Any:
        from modules.ui.styles import StyleDatabase

        return StyleDatabase(runtime.require_context().paths.styles_file)

    @property
    def styles(self) -> dict[str, Any]:
        try:
            return self._database().load()
        except RuntimeError:
            return {}

    def apply_styles_to_prompt(self, prompt: str, styles: list[str]) -> str:
        return self._database().apply(prompt, "", list(styles))[0]

    def apply_negative_styles_to_prompt(self, prompt: str, styles: list[str]) -> str:
        return self._database().apply("", prompt, list(styles))[1]
