"""Routes that produce or read images: txt2img, extra-single-image, extra-batch-images, png-info.

txt2img is validated completely here (types, bounds from the settings, names), then queued; the
handler awaits the job's future without holding a thread, so other requests keep being served.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool

from modules.api.schemas import (
    ExtrasBatchImagesRequest,
    ExtrasBatchImagesResponse,
    ExtrasSingleImageRequest,
    ExtrasSingleImageResponse,
    PNGInfoRequest,
    PNGInfoResponse,
    StableDiffusionTxt2ImgProcessingAPI,
    TextToImageResponse,
    documented_body,
)
from modules.api.validation import (
    ApiError,
    check_finite,
    check_generation_names,
    decode_base64_image,
    encode_png_base64,
    read_json_object,
)
from modules.app.context import AppContext
from modules.app.options import OptionError
from modules.generation.params import GenerationLimits, ParameterError, Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.imaging.metadata import read_infotext
from modules.models.safe_load import CheckpointError
from modules.plugins.api_scripts import selection_from_request

TXT2IMG_DEFAULTS = Txt2ImgParams()
FLOAT_FIELDS = ("cfg_scale", "subseed_strength", "eta", "s_noise", "denoising_strength", "hr_scale")
RESAMPLERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}
UPSCALER_NAMES = ("None", *RESAMPLERS)


def request_echo(body: dict[str, Any]) -> dict[str, Any]:
    """A1111 echoes the request with every field, defaults filled in."""
    echo = dict(TXT2IMG_DEFAULTS.__dict__)
    echo.update(body)
    return echo


def parse_txt2img(context: AppContext, body: dict[str, Any]) -> Txt2ImgParams:
    """Typed, bounded and name-checked parameters, or `ApiError` naming the field."""
    body = dict(body)
    if body.get("sampler_index") and not body.get("sampler_name"):
        body["sampler_name"] = body["sampler_index"]
    check_finite(body, FLOAT_FIELDS)
    check_generation_names(context, body)
    limits = GenerationLimits.from_options(context.options)
    try:
        params = Txt2ImgParams.from_request(body, limits)
        context.options.copy_with(params.override_settings)
    except (ParameterError, OptionError) as error:
        raise ApiError(422, str(error)) from None
    params.do_not_save_samples = params.do_not_save_samples or not params.save_images
    params.do_not_save_grid = params.do_not_save_grid or not params.save_images
    return params


def _resize(image: Image.Image, request: dict[str, Any]) -> Image.Image:
    upscaler = request.get("upscaler_1") or "None"
    if upscaler == "None":
        return image
    if int(request.get("resize_mode") or 0) == 1:
        size = (int(request.get("upscaling_resize_w") or 512), int(request.get("upscaling_resize_h") or 512))
    else:
        factor = float(request.get("upscaling_resize") or 2)
        size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, RESAMPLERS[upscaler])


def _check_extras_request(request: dict[str, Any], limits: GenerationLimits) -> None:
    for field_name in ("upscaler_1", "upscaler_2"):
        name = request.get(field_name) or "None"
        if name not in UPSCALER_NAMES:
            raise ApiError(404, f"{field_name}: upscaler {name!r} not found; valid values are: {', '.join(UPSCALER_NAMES)}")
    check_finite(request, ("upscaling_resize", "gfpgan_visibility", "codeformer_visibility", "codeformer_weight"))
    try:
        factor = float(request.get("upscaling_resize") or 2)
        width = int(request.get("upscaling_resize_w") or 512)
        height = int(request.get("upscaling_resize_h") or 512)
    except (TypeError, ValueError):
        raise ApiError(422, "upscaling_resize: expected numbers for upscaling_resize, upscaling_resize_w and _h") from None
    if not 0 < factor <= 8:
        raise ApiError(422, f"upscaling_resize: must be between 0 and 8, got {factor}")
    if not (1 <= width <= limits.max_side and 1 <= height <= limits.max_side):
        raise ApiError(422, f"upscaling_resize_w: width and height must be between 1 and {limits.max_side}")


async def run_generation(context: AppContext, body: dict[str, Any], params: Txt2ImgParams, *, is_img2img: bool) -> tuple[list[str], Any]:
    """Queue a validated txt2img/img2img request with its scripts, wait for it without blocking the
    event loop, and return (base64 PNGs with infotext, Processed). Errors become `ApiError`s."""
    task_id = body.get("force_task_id") or None
    if task_id is not None and not isinstance(task_id, str):
        raise ApiError(422, "force_task_id: expected a string")
    try:
        selection = selection_from_request(context, body, is_img2img=is_img2img)
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    submit = context.submit_img2img if is_img2img else context.submit_txt2img
    _, future = submit(params, task_id, selection)
    try:
        processed = await asyncio.wrap_future(future)
    except CheckpointError as error:
        raise ApiError(500, str(error), "CheckpointError") from None
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    images: list[str] = []
    if params.send_images:
        pairs = list(zip(processed.images, processed.infotexts, strict=True))
        images = await run_in_threadpool(lambda: [encode_png_base64(image, text) for image, text in pairs])
    return images, processed


def create_generation_router(context: AppContext) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/sdapi/v1/txt2img",
        response_model=TextToImageResponse,
        openapi_extra=documented_body(StableDiffusionTxt2ImgProcessingAPI),
    )
    async def txt2img_route(request: Request) -> Any:
        body = await read_json_object(request)
        params = parse_txt2img(context, body)
        images, processed = await run_generation(context, body, params, is_img2img=False)
        return {"images": images, "parameters": request_echo(body), "info": processed.js()}

    @router.post(
        "/sdapi/v1/extra-single-image",
        response_model=ExtrasSingleImageResponse,
        openapi_extra=documented_body(ExtrasSingleImageRequest),
        description="Upscaler models arrive later: upscaler_1 'None' returns the image unchanged; 'Lanczos' and 'Nearest' resize.",
    )
    async def extra_single_image(request: Request) -> Any:
        body = await read_json_object(request)
        limits = GenerationLimits.from_options(context.options)
        _check_extras_request(body, limits)

        def work() -> str:
            image = decode_base64_image("image", body.get("image"), limits)
            return encode_png_base64(_resize(image, body), read_infotext(image))

        return {"html_info": "", "image": await run_in_threadpool(work)}

    @router.post(
        "/sdapi/v1/extra-batch-images",
        response_model=ExtrasBatchImagesResponse,
        openapi_extra=documented_body(ExtrasBatchImagesRequest),
        description="Upscaler models arrive later: upscaler_1 'None' returns the images unchanged; 'Lanczos' and 'Nearest' resize.",
    )
    async def extra_batch_images(request: Request) -> Any:
        body = await read_json_object(request)
        limits = GenerationLimits.from_options(context.options)
        _check_extras_request(body, limits)
        items = body.get("imageList")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ApiError(422, "imageList: expected a list of {data, name} objects")

        def work() -> list[str]:
            decoded = [decode_base64_image(f"imageList[{index}].data", item.get("data"), limits) for index, item in enumerate(items)]
            return [encode_png_base64(_resize(image, body), read_infotext(image)) for image in decoded]

        return {"html_info": "", "images": await run_in_threadpool(work)}

    @router.post("/sdapi/v1/png-info", response_model=PNGInfoResponse, openapi_extra=documented_body(PNGInfoRequest))
    async def png_info(request: Request) -> Any:
        """The infotext of an image, parsed into fields, plus its other text chunks."""
        body = await read_json_object(request)
        if not body.get("image"):
            return {"info": "", "items": {}, "parameters": {}}
        limits = GenerationLimits.from_options(context.options)
        image = await run_in_threadpool(decode_base64_image, "image", body["image"], limits)
        text = read_infotext(image) or ""
        items = {key: value for key, value in image.info.items() if key != "parameters" and isinstance(value, str | int | float)}
        parameters = parse_infotext(text) if text else {}
        return {"info": text, "items": items, "parameters": json.loads(json.dumps(parameters, default=str))}

    return router
