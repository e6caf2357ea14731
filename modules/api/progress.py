"""Progress, interrupt and skip: `/sdapi/v1/progress`, `/internal/progress` (by task id, for the UI),
`/sdapi/v1/interrupt`, `/sdapi/v1/skip`.

All handlers only read the job's counters (or set its flags), so they answer at once while a
generation runs on the queue's worker thread.
"""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import torch
from fastapi import APIRouter
from PIL import Image

from modules.api.schemas import InternalProgressResponse, ProgressRequest, ProgressResponse
from modules.app.context import AppContext
from modules.app.jobs import Job

# Linear map from the 4 latent channels of SD-family VAEs to RGB: a cheap preview without the VAE.
LATENT_TO_RGB = torch.tensor(
    [
        [0.30, 0.19, 0.21],
        [0.19, 0.29, 0.17],
        [-0.16, 0.19, 0.26],
        [-0.18, -0.27, -0.47],
    ]
)


def cheap_preview(latent: torch.Tensor) -> Image.Image:
    """First image of a (B, C, H, W) latent as an RGB picture at latent resolution."""
    sample = latent[0].detach().to("cpu", torch.float32)
    if sample.shape[0] == LATENT_TO_RGB.shape[0]:
        rgb = torch.einsum("chw,cr->hwr", sample, LATENT_TO_RGB)
    else:
        rgb = sample.mean(dim=0, keepdim=True).permute(1, 2, 0).repeat(1, 1, 3)
    array = ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
    return Image.fromarray(array)


def _png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _previews_enabled(context: AppContext) -> bool:
    return bool(context.options.live_previews_enable) and int(context.options.show_progress_every_n_steps) != 0


class PreviewCache:
    """Base64 PNG of each job's latest preview, encoded once per preview step (the job is never changed).

    The pipeline may leave a PIL preview on `job.current_image` (with `job.preview_step`); otherwise a
    cheap preview is made from `job.current_latent`.
    """

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._data: str | None = None

    def get(self, context: AppContext, job: Job) -> tuple[int, str] | None:
        """(preview id, base64 PNG) or None when there is nothing to show or previews are off."""
        if not _previews_enabled(context):
            return None
        image = job.current_image if isinstance(job.current_image, Image.Image) else None
        step = job.preview_step if image is not None else job.sampling_step
        key = (job.id, step)
        if key == self._key and self._data is not None:
            return step, self._data
        if image is None:
            latent = job.current_latent
            if latent is None:
                return None
            image = cheap_preview(latent)
        self._key, self._data = key, _png_base64(image)
        return step, self._data


def progress_state(job: Job | None) -> dict[str, Any]:
    """A1111's `state` object; all zeros while idle (clients poll `job_count` to see the end)."""
    return {
        "skipped": bool(job and job.skipped),
        "interrupted": bool(job and job.interrupted),
        "stopping_generation": False,
        "job": job.name if job else "",
        "job_count": job.job_count if job else 0,
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(job.started_at)) if job and job.started_at else "0",
        "job_no": job.job_no if job else 0,
        "sampling_step": job.sampling_step if job else 0,
        "sampling_steps": job.sampling_steps if job else 0,
    }


def create_progress_router(context: AppContext) -> APIRouter:
    router = APIRouter()
    previews = PreviewCache()

    @router.get("/sdapi/v1/progress", response_model=ProgressResponse)
    def progress(skip_current_image: bool = False) -> dict[str, Any]:
        job = context.jobs.current
        if job is None:
            return {"progress": 0, "eta_relative": 0, "state": progress_state(None), "current_image": None, "textinfo": None}
        return {
            "progress": job.progress,
            "eta_relative": job.eta_seconds or 0,
            "state": progress_state(job),
            "current_image": None if skip_current_image else (previews.get(context, job) or (None, None))[1],
            "textinfo": job.textinfo or None,
            "current_task": job.id,
        }

    @router.post("/internal/progress", response_model=InternalProgressResponse, response_model_exclude_none=False)
    def internal_progress(request: ProgressRequest) -> dict[str, Any]:
        """Progress of one task by id, as the UI polls it."""
        queue = context.jobs
        job = queue.find(request.id_task) if request.id_task else None
        position = queue.position(request.id_task) if request.id_task else None
        active = job is not None and job is queue.current
        queued = position is not None
        completed = job is not None and job.finished_at is not None
        if not active:
            text = "In queue..." if queued else ("Done" if completed else "Waiting...")
            return {
                "active": False,
                "queued": queued,
                "completed": completed,
                "progress": 1.0 if completed else None,
                "id_live_preview": -1,
                "textinfo": text,
                "queue_position": position,
            }
        preview = None
        preview_id = request.id_live_preview
        found = previews.get(context, job) if request.live_preview else None
        if found is not None and found[0] != request.id_live_preview:
            preview_id, preview = found
        return {
            "active": True,
            "queued": False,
            "completed": False,
            "progress": job.progress,
            "eta": job.eta_seconds,
            "live_preview": preview,
            "id_live_preview": preview_id,
            "textinfo": job.textinfo or f"Step {job.sampling_step}/{job.sampling_steps}",
        }

    @router.post("/sdapi/v1/interrupt")
    def interrupt() -> dict:
        """Stop the running job after the current sampling step; it returns what it finished."""
        context.jobs.interrupt()
        return {}

    @router.post("/sdapi/v1/skip")
    def skip() -> dict:
        """Abandon the running job's current batch and go on with the next one."""
        context.jobs.skip()
        return {}

    return router
