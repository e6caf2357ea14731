"""POST /sdapi/v1/img2img with A1111's request and response fields.

Request: every txt2img field plus `init_images` (base64 list), `mask` (base64), `mask_blur`
(`mask_blur_x`, `mask_blur_y`), `inpainting_fill`, `inpaint_full_res`, `inpaint_full_res_padding`,
`inpainting_mask_invert`, `resize_mode`, `denoising_strength`, `image_cfg_scale`,
`initial_noise_multiplier`, `include_init_images`. Response: `images`, `parameters` (the request
echoed with defaults; `init_images` and `mask` only when `include_init_images`), `info`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modules.api.routes_generation import run_generation
from modules.api.validation import (
    ApiError,
    check_finite,
    check_generation_names,
    decode_base64_image,
    error_response,
    read_json_object,
)
from modules.app.context import AppContext
from modules.app.options import OptionError
from modules.generation.params import GenerationLimits, Img2ImgParams, ParameterError

IMG2IMG_FLOAT_FIELDS = (
    "cfg_scale",
    "subseed_strength",
    "eta",
    "s_noise",
    "denoising_strength",
    "image_cfg_scale",
    "initial_noise_multiplier",
)
ECHO_SKIPPED = ("init_images", "mask")


def request_echo(body: dict[str, Any]) -> dict[str, Any]:
    """A1111's `parameters`: the request over the defaults; the images are left out unless asked for."""
    echo = {key: value for key, value in Img2ImgParams().__dict__.items() if key not in ECHO_SKIPPED}
    echo.update(init_images=None, mask=None)
    echo.update(body)
    if not body.get("include_init_images"):
        echo["init_images"] = None
        echo["mask"] = None
    return echo


def parse_img2img(context: AppContext, body: dict[str, Any]) -> Img2ImgParams:
    """Decode the images and build typed, bounded parameters, or raise `ApiError` naming the field."""
    body = dict(body)
    if body.get("sampler_index") and not body.get("sampler_name"):
        body["sampler_name"] = body["sampler_index"]
    check_finite(body, IMG2IMG_FLOAT_FIELDS)
    check_generation_names(context, body)
    limits = GenerationLimits.from_options(context.options)
    images = body.get("init_images")
    if not isinstance(images, list) or not images:
        raise ApiError(422, "init_images: expected a non-empty list of base64-encoded images")
    body["init_images"] = [decode_base64_image(f"init_images[{index}]", item, limits) for index, item in enumerate(images)]
    if body.get("mask"):
        body["mask"] = decode_base64_image("mask", body["mask"], limits)
    else:
        body["mask"] = None
    try:
        params = Img2ImgParams.from_request(body, limits)
        context.options.copy_with(params.override_settings)
    except (ParameterError, OptionError) as error:
        raise ApiError(422, str(error)) from None
    params.do_not_save_samples = params.do_not_save_samples or not params.save_images
    params.do_not_save_grid = params.do_not_save_grid or not params.save_images
    return params


def create_img2img_router(context: AppContext) -> APIRouter:
    """The img2img route bound to one app context."""
    router = APIRouter()

    @router.post("/sdapi/v1/img2img")
    async def img2img_route(request: Request) -> Any:
        try:
            body = await read_json_object(request)
            params = await run_in_threadpool(parse_img2img, context, body)
            images, processed = await run_generation(context, body, params, is_img2img=True)
        except ApiError as error:
            return error_response(error.status, error.error, error.detail)
        return {"images": images, "parameters": request_echo(body), "info": processed.js()}

    return router
