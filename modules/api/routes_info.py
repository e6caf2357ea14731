"""Read-only lists and small commands: settings, flags, models, samplers, refreshes, memory, server control.

Lists whose feature arrives in a later issue (face restorers, hypernetworks, scripts, extensions,
embeddings) answer with A1111's shape and what exists so far.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import sys
import threading
from typing import Any

import psutil
import torch
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modules.api.schemas import (
    EmbeddingsResponse,
    ExtensionItem,
    FaceRestorerItem,
    HypernetworkItem,
    LatentUpscalerModeItem,
    MemoryResponse,
    PromptStyleItem,
    SamplerItem,
    SchedulerItem,
    ScriptsList,
    SDModelItem,
    SDVaeItem,
    UpscalerItem,
)
from modules.api.validation import ApiError, read_json_object
from modules.app.context import AppContext
from modules.app.options import LIMIT_OPTION_KEYS, OptionError
from modules.models.safe_load import CheckpointError
from modules.sampling.samplers import SAMPLERS
from modules.sampling.schedules import SCHEDULES

log = logging.getLogger(__name__)

LATENT_UPSCALE_MODES = (
    "Latent",
    "Latent (antialiased)",
    "Latent (bicubic)",
    "Latent (bicubic antialiased)",
    "Latent (nearest)",
    "Latent (nearest-exact)",
)
SECRET_FLAG_WORDS = ("auth", "password", "token", "secret", "key")


def restricted_option_keys(context: AppContext) -> set[str]:
    """Settings the API never changes: the request limits, and output folders with --hide-ui-dir-config."""
    keys = set(LIMIT_OPTION_KEYS)
    if getattr(context.flags, "hide_ui_dir_config", False):
        keys |= {key for key in context.options.infos if key.startswith("outdir_")}
    return keys


def plan_option_changes(context: AppContext, body: dict[str, Any]) -> dict[str, Any]:
    """The validated changes in `body`: unchanged values are dropped, restricted keys dropped and logged.

    Raises `ApiError` 422 naming every unknown key and every value of the wrong type; nothing changes then.
    """
    options = context.options
    current = options.data()
    restricted = restricted_option_keys(context)
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in body.items():
        if key in current and current[key] == value:
            continue
        if key in restricted:
            log.warning("POST /sdapi/v1/options: setting %r cannot be changed through the API; ignored", key)
            continue
        if key not in options.infos:
            problems.append(f"{key}: unknown setting")
            continue
        try:
            changes[key] = options.validate(key, value)
        except OptionError as error:
            problems.append(str(error))
    if problems:
        raise ApiError(422, "; ".join(problems))
    return changes


def safe_flags(context: AppContext) -> dict[str, Any]:
    """The command-line flags with credentials hidden."""
    result = {}
    for key, value in vars(context.flags).items():
        secret = any(word in key for word in SECRET_FLAG_WORDS) and value
        result[key] = "<hidden>" if secret else value
    return result


def read_styles(context: AppContext) -> list[dict[str, Any]]:
    """styles.csv (A1111's columns: name, prompt, negative_prompt); missing file → empty list."""
    path = context.paths.styles_file
    if not path.is_file():
        return []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [
            {"name": row.get("name") or "", "prompt": row.get("prompt"), "negative_prompt": row.get("negative_prompt")}
            for row in csv.DictReader(handle)
            if row.get("name")
        ]


def memory_report() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    ram = {"free": memory.available, "used": memory.total - memory.available, "total": memory.total}
    if not torch.cuda.is_available():
        return {"ram": ram, "cuda": {"error": "CUDA is not available"}}
    free, total = torch.cuda.mem_get_info()
    stats = torch.cuda.memory_stats()
    cuda = {
        "system": {"free": free, "used": total - free, "total": total},
        "active": {"current": stats.get("active_bytes.all.current", 0), "peak": stats.get("active_bytes.all.peak", 0)},
        "allocated": {"current": stats.get("allocated_bytes.all.current", 0), "peak": stats.get("allocated_bytes.all.peak", 0)},
        "reserved": {"current": stats.get("reserved_bytes.all.current", 0), "peak": stats.get("reserved_bytes.all.peak", 0)},
        "inactive": {"current": stats.get("inactive_split_bytes.all.current", 0), "peak": stats.get("inactive_split_bytes.all.peak", 0)},
        "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
    }
    return {"ram": ram, "cuda": cuda}


def _later(action) -> None:
    """Run `action` shortly after the response has gone out."""
    threading.Timer(0.3, action).start()


def create_info_router(context: AppContext) -> APIRouter:
    router = APIRouter()
    models = context.models

    @router.get("/sdapi/v1/options")
    def get_options() -> dict[str, Any]:
        return context.options.data()

    @router.post("/sdapi/v1/options")
    async def set_options(request: Request) -> Any:
        """Change any subset of the settings; a checkpoint named here is loaded before the reply."""
        body = await read_json_object(request)
        if body.get("sd_vae") not in (None, *models.vae_choices()):
            models.refresh()
        changes = plan_option_changes(context, body)
        checkpoint = changes.pop("sd_model_checkpoint", None)
        if checkpoint and (models.info is None or checkpoint != models.info.title):
            try:
                models.find(checkpoint)
            except CheckpointError as error:
                raise ApiError(422, str(error)) from None
            try:
                await run_in_threadpool(context.switch_model, checkpoint)
            except CheckpointError as error:
                raise ApiError(500, str(error), "CheckpointError") from None
        context.options.update(changes)
        context.options.save()
        return None

    @router.get("/sdapi/v1/cmd-flags")
    def cmd_flags() -> dict[str, Any]:
        return safe_flags(context)

    @router.get("/sdapi/v1/samplers", response_model=list[SamplerItem])
    def samplers() -> list[dict[str, Any]]:
        return [{"name": info.name, "aliases": list(info.aliases), "options": {}} for info in SAMPLERS.values()]

    @router.get("/sdapi/v1/schedulers", response_model=list[SchedulerItem])
    def schedulers() -> list[dict[str, Any]]:
        return [
            {"name": key, "label": info.label, "aliases": None, "default_rho": -1, "need_inner_model": False}
            for key, info in SCHEDULES.items()
        ]

    @router.get("/sdapi/v1/upscalers", response_model=list[UpscalerItem])
    def upscalers() -> list[dict[str, Any]]:
        """Upscaler models arrive later; the plain resamplers are there already."""
        return [
            {"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": 4 if name != "None" else 1}
            for name in ("None", "Lanczos", "Nearest")
        ]

    @router.get("/sdapi/v1/latent-upscale-modes", response_model=list[LatentUpscalerModeItem])
    def latent_upscale_modes() -> list[dict[str, str]]:
        return [{"name": name} for name in LATENT_UPSCALE_MODES]

    @router.get("/sdapi/v1/sd-models", response_model=list[SDModelItem])
    def sd_models() -> list[dict[str, Any]]:
        return [
            {
                "title": info.title,
                "model_name": info.api_model_name,
                "hash": info.shorthash,
                "sha256": info.sha256,
                "filename": str(info.filename),
                "config": None,
            }
            for info in models.checkpoints
        ]

    @router.get("/sdapi/v1/sd-vae", response_model=list[SDVaeItem])
    def sd_vae() -> list[dict[str, Any]]:
        return [{"model_name": name, "filename": str(path)} for name, path in sorted(models.vaes.items())]

    @router.get("/sdapi/v1/prompt-styles", response_model=list[PromptStyleItem])
    def prompt_styles() -> list[dict[str, Any]]:
        return read_styles(context)

    @router.get("/sdapi/v1/embeddings", response_model=EmbeddingsResponse)
    def embeddings() -> dict[str, Any]:
        """Textual inversions found in the embeddings folder for the loaded model; `skipped` gives why."""
        if context.embeddings is None:
            context.refresh_embeddings()
        return context.embeddings.describe() if context.embeddings is not None else {"loaded": {}, "skipped": {}}

    @router.get("/sdapi/v1/hypernetworks", response_model=list[HypernetworkItem])
    def hypernetworks() -> list[dict[str, Any]]:
        """Hypernetwork files in models/hypernetworks (name and path, as A1111)."""
        folder = context.network_manager().hypernetworks.folder
        if folder is None or not folder.is_dir():
            return []
        return [{"name": path.stem, "path": str(path)} for path in sorted(folder.rglob("*.pt"))]

    @router.get("/sdapi/v1/face-restorers", response_model=list[FaceRestorerItem])
    def face_restorers() -> list[dict[str, Any]]:
        return []

    @router.get("/sdapi/v1/scripts", response_model=ScriptsList)
    def scripts() -> dict[str, list[str]]:
        from modules.plugins.api_scripts import scripts_list

        return scripts_list(context)

    @router.get("/sdapi/v1/script-info")
    def script_info() -> list[dict[str, Any]]:
        from modules.plugins.api_scripts import script_info as describe_scripts

        return describe_scripts(context)

    @router.get("/sdapi/v1/extensions", response_model=list[ExtensionItem])
    def extensions() -> list[dict[str, Any]]:
        return []

    @router.get("/sdapi/v1/memory", response_model=MemoryResponse)
    def memory() -> dict[str, Any]:
        return memory_report()

    @router.post("/sdapi/v1/refresh-checkpoints")
    def refresh_checkpoints() -> None:
        models.refresh()

    @router.post("/sdapi/v1/refresh-vae")
    def refresh_vae() -> None:
        models.refresh()

    @router.post("/sdapi/v1/refresh-embeddings")
    def refresh_embeddings() -> None:
        context.refresh_embeddings()

    @router.post("/sdapi/v1/refresh-loras")
    def refresh_loras() -> None:
        """Rescan the LoRA folders (header metadata comes from the cache for unchanged files)."""
        context.network_manager().library.refresh()

    @router.get("/sdapi/v1/loras")
    def loras() -> list[dict[str, Any]]:
        """A1111's list: name, alias (``ss_output_name``), path and the safetensors header metadata."""
        library = context.network_manager().library
        if not library.files:
            library.refresh()
        return library.describe()

    @router.post("/sdapi/v1/unload-checkpoint")
    async def unload_checkpoint() -> None:
        """Drop the loaded model (on the worker, after queued jobs); the next job loads it again."""
        await run_in_threadpool(context.jobs.run, lambda job: _unload(context), name="unload checkpoint")

    @router.post("/sdapi/v1/reload-checkpoint")
    async def reload_checkpoint() -> None:
        try:
            await run_in_threadpool(context.jobs.run, lambda job: context.ensure_model(), name="reload checkpoint")
        except CheckpointError as error:
            raise ApiError(500, str(error), "CheckpointError") from None

    if getattr(context.flags, "api_server_stop", False):

        @router.post("/sdapi/v1/server-kill")
        def server_kill() -> dict:
            _later(lambda: os._exit(0))
            return {}

        @router.post("/sdapi/v1/server-restart")
        def server_restart() -> dict:
            _later(lambda: os.execv(sys.executable, [sys.executable, *sys.argv]))
            return {}

        @router.post("/sdapi/v1/server-stop")
        def server_stop() -> dict:
            _later(lambda: os.kill(os.getpid(), signal.SIGINT))
            return {}

    return router


def _unload(context: AppContext) -> None:
    import gc

    context.models.engine = None
    context.models.info = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
