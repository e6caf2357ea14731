"""Pydantic models of the API's requests and responses, with A1111's model and field names.

They document `/docs`. Request bodies are read and validated by the routes themselves (so that errors
name the field in A1111's error shape and bounds come from the settings); responses are returned in
these shapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modules.generation.params import Txt2ImgParams

_TXT2IMG = Txt2ImgParams()


class StableDiffusionTxt2ImgProcessingAPI(BaseModel):
    """POST /sdapi/v1/txt2img. Fields A1111 knows but this app does not use yet are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    prompt: str = _TXT2IMG.prompt
    negative_prompt: str = _TXT2IMG.negative_prompt
    styles: list[str] = Field(default_factory=list)
    seed: int = _TXT2IMG.seed
    subseed: int = _TXT2IMG.subseed
    subseed_strength: float = _TXT2IMG.subseed_strength
    seed_resize_from_h: int = _TXT2IMG.seed_resize_from_h
    seed_resize_from_w: int = _TXT2IMG.seed_resize_from_w
    sampler_name: str = Field(_TXT2IMG.sampler_name, description="a name from /sdapi/v1/samplers")
    sampler_index: str | None = Field(None, description="old name of sampler_name")
    scheduler: str = Field(_TXT2IMG.scheduler, description="a name from /sdapi/v1/schedulers")
    batch_size: int = Field(_TXT2IMG.batch_size, description="bounded by the limit_max_batch_size setting")
    n_iter: int = Field(_TXT2IMG.n_iter, description="batch count; bounded by limit_max_batch_count")
    steps: int = Field(_TXT2IMG.steps, description="bounded by limit_max_steps")
    cfg_scale: float = Field(_TXT2IMG.cfg_scale, description="bounded by limit_max_cfg_scale")
    width: int = Field(_TXT2IMG.width, description="multiple of 8; bounded by limit_max_side and limit_max_pixels")
    height: int = Field(_TXT2IMG.height, description="multiple of 8; bounded by limit_max_side and limit_max_pixels")
    restore_faces: bool | None = None
    tiling: bool | None = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    eta: float | None = None
    s_noise: float | None = None
    enable_hr: bool = False
    denoising_strength: float | None = None
    override_settings: dict[str, Any] | None = Field(None, description="settings for this request only, e.g. CLIP_stop_at_last_layers")
    override_settings_restore_afterwards: bool = True
    force_task_id: str | None = Field(None, description="task id to report progress under (/internal/progress)")
    script_name: str | None = None
    script_args: list[Any] = Field(default_factory=list)
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    send_images: bool = True
    save_images: bool = False
    infotext: str | None = None


class TextToImageResponse(BaseModel):
    images: list[str] | None = Field(None, description="bare base64 PNGs with the infotext in a `parameters` chunk")
    parameters: dict[str, Any]
    info: str = Field(description="JSON string: seeds, prompts and infotexts of every image")


class ExtrasBaseRequest(BaseModel):
    """Shared fields of the extras requests. Upscaler models arrive later: with upscaler "None" the image
    comes back unchanged; "Lanczos" and "Nearest" resize."""

    model_config = ConfigDict(extra="allow")

    resize_mode: int = Field(0, description="0: scale by upscaling_resize, 1: to upscaling_resize_w × _h")
    show_extras_results: bool = True
    gfpgan_visibility: float = 0
    codeformer_visibility: float = 0
    codeformer_weight: float = 0
    upscaling_resize: float = 2
    upscaling_resize_w: int = 512
    upscaling_resize_h: int = 512
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = 0
    upscale_first: bool = False


class ExtrasSingleImageRequest(ExtrasBaseRequest):
    image: str = Field("", description="base64 image, with or without a data:image/...;base64, prefix")


class ExtrasSingleImageResponse(BaseModel):
    html_info: str
    image: str


class FileData(BaseModel):
    data: str = Field(description="base64 image")
    name: str


class ExtrasBatchImagesRequest(ExtrasBaseRequest):
    imageList: list[FileData]  # noqa: N815 - A1111's field name


class ExtrasBatchImagesResponse(BaseModel):
    html_info: str
    images: list[str]


class PNGInfoRequest(BaseModel):
    image: str = Field(description="base64 image, with or without a data:image/...;base64, prefix")


class PNGInfoResponse(BaseModel):
    info: str = Field(description="the infotext")
    items: dict[str, Any] = Field(description="other metadata chunks of the image")
    parameters: dict[str, Any] = Field(description="the infotext parsed into fields")


class ProgressState(BaseModel):
    skipped: bool
    interrupted: bool
    stopping_generation: bool
    job: str
    job_count: int
    job_timestamp: str
    job_no: int
    sampling_step: int
    sampling_steps: int


class ProgressResponse(BaseModel):
    progress: float = Field(description="0..1 over all batches of the running job")
    eta_relative: float
    state: ProgressState
    current_image: str | None = Field(None, description="base64 PNG preview when live previews are on")
    textinfo: str | None = None
    current_task: str | None = None


class ProgressRequest(BaseModel):
    id_task: str | None = None
    id_live_preview: int = -1
    live_preview: bool = True


class InternalProgressResponse(BaseModel):
    active: bool
    queued: bool
    completed: bool
    progress: float | None = None
    eta: float | None = None
    live_preview: str | None = None
    id_live_preview: int | None = None
    textinfo: str | None = None
    queue_position: int | None = None


class SamplerItem(BaseModel):
    name: str
    aliases: list[str]
    options: dict[str, Any]


class SchedulerItem(BaseModel):
    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float | None = None
    need_inner_model: bool | None = None


class UpscalerItem(BaseModel):
    name: str
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None
    scale: float | None = None


class LatentUpscalerModeItem(BaseModel):
    name: str


class SDModelItem(BaseModel):
    title: str
    model_name: str
    hash: str | None = None
    sha256: str | None = None
    filename: str
    config: str | None = None


class SDVaeItem(BaseModel):
    model_name: str
    filename: str


class HypernetworkItem(BaseModel):
    name: str
    path: str | None = None


class FaceRestorerItem(BaseModel):
    name: str
    cmd_dir: str | None = None


class PromptStyleItem(BaseModel):
    name: str
    prompt: str | None = None
    negative_prompt: str | None = None


class EmbeddingsResponse(BaseModel):
    loaded: dict[str, Any]
    skipped: dict[str, Any]


class ScriptsList(BaseModel):
    txt2img: list[str]
    img2img: list[str]


class ExtensionItem(BaseModel):
    name: str
    remote: str
    branch: str
    commit_hash: str
    version: str
    commit_date: int
    enabled: bool


class MemoryResponse(BaseModel):
    ram: dict[str, Any]
    cuda: dict[str, Any]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    StableDiffusionTxt2ImgProcessingAPI,
    ExtrasSingleImageRequest,
    ExtrasBatchImagesRequest,
    PNGInfoRequest,
)


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself: /docs shows `model` as the body."""
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}}


def request_component_schemas() -> dict[str, Any]:
    """JSON schemas of the request models (and the models they use) for the OpenAPI components."""
    schemas: dict[str, Any] = {}
    for model in REQUEST_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas
