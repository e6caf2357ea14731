"""Input checks shared by the API routes: errors that name the field, image decoding, name lookups.

Everything here runs before a job is queued, so a rejected request allocates nothing on the model side.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import warnings
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError

from modules.app.context import AppContext
from modules.generation.params import GenerationLimits, ParameterError
from modules.imaging.metadata import encode_image
from modules.models.safe_load import CheckpointError
from modules.sampling.samplers import find_sampler
from modules.sampling.schedules import find_schedule

DATA_URL_PREFIX = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,")
MAX_BASE64_CHARS = 200 * 1024 * 1024


class ApiError(Exception):
    """A request the API refuses: HTTP status plus a message that names the field."""

    def __init__(self, status: int, detail: str, error: str = "ValidationError") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error


def error_response(status: int, error: str, detail: str) -> JSONResponse:
    """A1111-shaped error body (`error`, `detail`, `body`, `errors`)."""
    return JSONResponse(status_code=status, content={"error": error, "detail": detail, "body": "", "errors": detail})


def _reject_constant(value: str) -> float:
    raise ValueError(f"{value} is not allowed")


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; NaN/Infinity literals are refused (422)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as error:
        raise ApiError(422, f"request body: not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise ApiError(422, "request body: expected a JSON object")
    return body


def check_finite(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    """422 naming the first of `fields` holding NaN or an infinity."""
    for name in fields:
        value = body.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ApiError(422, f"{name}: must be a finite number, got {value}")


def decode_base64_image(field_name: str, data: Any, limits: GenerationLimits) -> Image.Image:
    """Decode a base64 image (with or without a `data:image/...;base64,` prefix).

    Raises `ApiError` 422 for bad base64 or data that is not an image, 413 for an image whose
    header announces more pixels than `limits.max_pixels` (checked before the pixels are decoded).
    """
    if not isinstance(data, str) or not data:
        raise ApiError(422, f"{field_name}: expected a base64-encoded image")
    if len(data) > MAX_BASE64_CHARS:
        raise ApiError(413, f"{field_name}: the encoded image is larger than {MAX_BASE64_CHARS} characters")
    text = DATA_URL_PREFIX.sub("", data.strip(), count=1)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{field_name}: not valid base64") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise ApiError(413, f"{field_name}: {width}x{height} is more than the limit of {limits.max_pixels} pixels")
            image.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, f"{field_name}: the image is too large to decode (decompression bomb)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ApiError(422, f"{field_name}: not a readable image") from None
    return image


def encode_png_base64(image: Image.Image, infotext: str | None) -> str:
    """Bare base64 PNG (no data-URL prefix) with the infotext in its `parameters` chunk."""
    return base64.b64encode(encode_image(image, "png", infotext)).decode("ascii")


def check_generation_names(context: AppContext, body: dict[str, Any]) -> None:
    """Unknown sampler, scheduler, checkpoint or script names → 422 listing the valid values."""
    try:
        if body.get("sampler_name"):
            find_sampler(body["sampler_name"])
        if body.get("scheduler"):
            find_schedule(body["scheduler"])
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    overrides = body.get("override_settings") or {}
    if not isinstance(overrides, dict):
        raise ApiError(422, "override_settings: must be an object of setting names to values")
    checkpoint = overrides.get("sd_model_checkpoint")
    if checkpoint:
        try:
            context.models.find(str(checkpoint))
        except CheckpointError as error:
            raise ApiError(422, f"override_settings.{error}") from None
    check_scripts(body)


def check_scripts(body: dict[str, Any]) -> None:
    """Types only: `alwayson_scripts` must be an object and `script_args` a list. Script names are
    checked against the loaded scripts by `modules.plugins.api_scripts.selection_from_request`."""
    if body.get("script_name") is not None and not isinstance(body["script_name"], str):
        raise ApiError(422, "script_name: expected a string")
    if body.get("script_args") is not None and not isinstance(body["script_args"], list):
        raise ApiError(422, "script_args: expected a list")
    if body.get("alwayson_scripts") is not None and not isinstance(body["alwayson_scripts"], dict):
        raise ApiError(422, "alwayson_scripts: expected an object of script names to {args: [...]}")


def parameter_error(error: ParameterError | ValueError) -> ApiError:
    return ApiError(422, str(error))
