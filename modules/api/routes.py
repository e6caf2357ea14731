"""A1111's `/sdapi/v1/*` HTTP API (the part the Foundation needs: txt2img, models, samplers, options,
progress, interrupt, skip). Request and response fields use A1111's names."""

from __future__ import annotations

import base64
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image

from modules.app.context import AppContext
from modules.app.options import OptionError
from modules.generation.params import ParameterError, Txt2ImgParams
from modules.imaging.metadata import encode_image
from modules.models.safe_load import CheckpointError
from modules.sampling.samplers import SAMPLERS
from modules.sampling.schedules import SCHEDULES

log = logging.getLogger(__name__)

TXT2IMG_DEFAULTS = Txt2ImgParams()


def encode_png_base64(image: Image.Image, infotext: str | None) -> str:
    return base64.b64encode(encode_image(image, "png", infotext)).decode("ascii")


def error_response(status: int, error: str, detail: str) -> JSONResponse:
    """A1111-shaped error body (`error`, `detail`, `body`, `errors`)."""
    return JSONResponse(status_code=status, content={"error": error, "detail": detail, "body": "", "errors": detail})


def create_api(context: AppContext) -> APIRouter:
    """Routes bound to one app context."""
    router = APIRouter()

    @router.post("/sdapi/v1/txt2img")
    async def txt2img_route(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return error_response(422, "ValidationError", "request body: not valid JSON")
        if not isinstance(body, dict):
            return error_response(422, "ValidationError", "request body: expected a JSON object")
        body = dict(body)
        if "sampler_index" in body and not body.get("sampler_name"):
            body["sampler_name"] = body["sampler_index"]
        try:
            params = Txt2ImgParams.from_request(body)
            params.do_not_save_samples = not params.save_images
            params.do_not_save_grid = not params.save_images
            context.options.copy_with(params.override_settings)
        except (ParameterError, OptionError) as error:
            return error_response(422, "ValidationError", str(error))
        task_id = body.get("force_task_id")
        try:
            processed = await _run_in_thread(context.run_txt2img, params, task_id)
        except (ValueError, CheckpointError) as error:
            return error_response(422 if isinstance(error, ValueError) else 500, type(error).__name__, str(error))
        images = []
        if params.send_images:
            images = [encode_png_base64(image, text) for image, text in zip(processed.images, processed.infotexts, strict=True)]
        return {"images": images, "parameters": _request_echo(body), "info": processed.js()}

    @router.get("/sdapi/v1/sd-models")
    def sd_models() -> list[dict[str, Any]]:
        context.models.refresh()
        return [
            {
                "title": info.title,
                "model_name": info.api_model_name,
                "hash": info.shorthash,
                "sha256": info.sha256,
                "filename": str(info.filename),
                "config": None,
            }
            for info in context.models.checkpoints
        ]

    @router.post("/sdapi/v1/refresh-checkpoints")
    def refresh_checkpoints() -> dict:
        context.models.refresh()
        return {}

    @router.get("/sdapi/v1/sd-vae")
    def sd_vae() -> list[dict[str, Any]]:
        return [{"model_name": name, "filename": str(path)} for name, path in sorted(context.models.vaes.items())]

    @router.get("/sdapi/v1/samplers")
    def samplers() -> list[dict[str, Any]]:
        return [{"name": info.name, "aliases": list(info.aliases), "options": {}} for info in SAMPLERS.values()]

    @router.get("/sdapi/v1/schedulers")
    def schedulers() -> list[dict[str, Any]]:
        return [
            {"name": key, "label": info.label, "aliases": None, "default_rho": -1, "need_inner_model": False}
            for key, info in SCHEDULES.items()
        ]

    @router.get("/sdapi/v1/options")
    def get_options() -> dict[str, Any]:
        return context.options.data()

    @router.post("/sdapi/v1/options")
    async def set_options(request: Request) -> Any:
        body = await request.json()
        if not isinstance(body, dict):
            return error_response(422, "ValidationError", "request body: expected a JSON object")
        try:
            checkpoint = body.pop("sd_model_checkpoint", None)
            if body.get("sd_vae") not in (None, *context.models.vae_choices()):
                context.models.refresh()
            context.options.update(body)
            if checkpoint and (context.models.info is None or checkpoint != context.models.info.title):
                await _run_in_thread(context.switch_model, checkpoint)
            context.options.save()
        except OptionError as error:
            return error_response(422, "ValidationError", str(error))
        except CheckpointError as error:
            return error_response(500, "CheckpointError", str(error))
        return None

    @router.get("/sdapi/v1/progress")
    def progress() -> dict[str, Any]:
        job = context.jobs.current
        if job is None:
            return {"progress": 0, "eta_relative": 0, "state": _state(None), "current_image": None, "textinfo": None}
        return {
            "progress": job.progress,
            "eta_relative": job.eta_seconds or 0,
            "state": _state(job),
            "current_image": None,
            "textinfo": job.textinfo or None,
        }

    @router.post("/sdapi/v1/interrupt")
    def interrupt() -> dict:
        context.jobs.interrupt()
        return {}

    @router.post("/sdapi/v1/skip")
    def skip() -> dict:
        context.jobs.skip()
        return {}

    return router


def _state(job) -> dict[str, Any]:
    return {
        "skipped": bool(job and job.skipped),
        "interrupted": bool(job and job.interrupted),
        "stopping_generation": False,
        "job": job.name if job else "",
        "job_count": job.job_count if job else 0,
        "job_timestamp": "0",
        "job_no": job.job_no if job else 0,
        "sampling_step": job.sampling_step if job else 0,
        "sampling_steps": job.sampling_steps if job else 0,
    }


def _request_echo(body: dict[str, Any]) -> dict[str, Any]:
    """A1111 echoes the request with every field, defaults filled in."""
    echo = {key: value for key, value in TXT2IMG_DEFAULTS.__dict__.items()}
    echo.update(body)
    return echo


async def _run_in_thread(function, *args):
    import anyio

    return await anyio.to_thread.run_sync(function, *args)


def install_api(app: FastAPI, context: AppContext) -> None:
    """Add the routes and a handler that turns unexpected errors into JSON, keeping the server up."""
    app.include_router(create_api(context))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("API error on %s", request.url.path)
        return error_response(500, type(error).__name__, str(error))
