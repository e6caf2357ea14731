"""The running app for the A1111 compatibility modules (`modules.shared`, `modules.processing`, ...).

The app sets it once at startup (`set_context`); only the compatibility modules and the script
system read it. Core code receives its context explicitly and never looks here.
"""

from __future__ import annotations

import threading
from typing import Any

_state: dict[str, Any] = {"context": None}
_local = threading.local()


def set_context(context: Any) -> None:
    """Called once by the app after it built its `AppContext`."""
    _state["context"] = context


def get_context() -> Any:
    """The app's `AppContext` (the one running the current thread's job, if any), or None before startup."""
    return getattr(_local, "context", None) or _state["context"]


def require_context() -> Any:
    """The app's context; raises a clear error when the app has not started."""
    context = get_context()
    if context is None:
        raise RuntimeError("the web UI has not started: modules.shared and modules.processing need a running app")
    return context


def set_current_job(job: Any, context: Any = None) -> None:
    """Remember, for this worker thread, the job being run and the app context running it."""
    _local.job = job
    _local.context = context


def current_job() -> Any:
    """The job running on this thread (set by the script runner), else the queue's current job."""
    job = getattr(_local, "job", None)
    if job is not None:
        return job
    context = get_context()
    return getattr(getattr(context, "jobs", None), "current", None) if context is not None else None


def thread_job() -> Any:
    """The job running on this thread, or None when this thread runs no job."""
    return getattr(_local, "job", None)


def loaded_model() -> Any:
    """The loaded engine wrapped with A1111's model attributes (None when no model is loaded)."""
    from modules.plugins.model_compat import ModelView

    context = get_context()
    if context is None or context.models.engine is None:
        return None
    return ModelView(context.models.engine, context.models.info)
