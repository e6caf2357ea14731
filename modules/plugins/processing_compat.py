"""The `p` object extensions expect (A1111's `StableDiffusionProcessingTxt2Img` / `...Img2Img`).

`p` wraps the job's typed params: reading or writing a params field (`p.cfg_scale = 5`) goes to the
params object the pipeline reads, so changes made by scripts take effect. Everything else a script
sets on `p` is kept on `p` itself. The pipeline fills `all_prompts`, `all_seeds`, ... (through the
script hooks) and the batch fields `prompts`, `seeds`, `subseeds`, `iteration`.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from modules.generation.params import Img2ImgParams, Txt2ImgParams, resolve_seed
from modules.generation.results import Processed as CoreProcessed

_OWN = ("params", "__dict__")


class StableDiffusionProcessing:
    """A1111's processing object over a params dataclass. Unknown keyword arguments become attributes."""

    params_class: type[Txt2ImgParams] = Txt2ImgParams

    def __init__(self, params: Txt2ImgParams | None = None, **kwargs: Any) -> None:
        object.__setattr__(self, "params", params if params is not None else self.params_class())
        defaults: dict[str, Any] = {
            "sd_model": None,
            "outpath_samples": None,
            "outpath_grids": None,
            "extra_generation_params": {},
            "all_prompts": [],
            "all_negative_prompts": [],
            "all_seeds": [],
            "all_subseeds": [],
            "prompts": [],
            "negative_prompts": [],
            "seeds": [],
            "subseeds": [],
            "iteration": 0,
            "batch_index": 0,
            "scripts": None,
            "script_args": [],
            "comments": {},
            "user": None,
            "is_api": False,
            "disable_extra_networks": False,
            "do_not_reload_embeddings": False,
            "denoising_strength": getattr(self.params, "denoising_strength", None),
            "enable_hr": False,
            "refiner_checkpoint": None,
            "token_merging_ratio": 0,
            "s_min_uncond": 0.0,
            "s_churn": 0.0,
            "s_tmin": 0.0,
            "s_tmax": None,
            "cached_c": [None, None],
            "cached_uc": [None, None],
        }
        for key, value in defaults.items():
            if key not in self._field_names():
                self.__dict__[key] = copy.copy(value)
        for key, value in kwargs.items():
            setattr(self, key, value)

    @classmethod
    def from_params(cls, params: Txt2ImgParams) -> StableDiffusionProcessing:
        """The `p` of a job: img2img params give an `StableDiffusionProcessingImg2Img`."""
        kind = StableDiffusionProcessingImg2Img if isinstance(params, Img2ImgParams) else StableDiffusionProcessingTxt2Img
        return kind(params)

    def _field_names(self) -> set[str]:
        return {item.name for item in dataclasses.fields(self.params)}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        params = self.__dict__.get("params")
        if params is not None and name in params.__dataclass_fields__:
            return getattr(params, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("params")
        if isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        elif params is not None and name in params.__dataclass_fields__:
            setattr(params, name, value)
        else:
            self.__dict__[name] = value

    def __copy__(self) -> StableDiffusionProcessing:
        """A copy whose params are its own (scripts copy `p` and change the copy)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__["params"] = copy.copy(self.params)
        clone.__dict__["params"].override_settings = dict(self.params.override_settings)
        clone.__dict__["extra_generation_params"] = dict(self.__dict__.get("extra_generation_params") or {})
        return clone

    @property
    def is_img2img(self) -> bool:
        return isinstance(self.params, Img2ImgParams)

    @property
    def main_prompt(self) -> str:
        return self.all_prompts[0] if self.all_prompts else self.prompt

    @property
    def main_negative_prompt(self) -> str:
        return self.all_negative_prompts[0] if self.all_negative_prompts else self.negative_prompt

    def setup_prompts(self) -> None:
        """Fill `all_prompts` / `all_negative_prompts` from `prompt` (a string or a list), as A1111."""
        count = self.batch_size * self.n_iter
        self.all_prompts = list(self.prompt) if isinstance(self.prompt, list) else [self.prompt] * count
        negative = self.negative_prompt
        self.all_negative_prompts = list(negative) if isinstance(negative, list) else [negative] * count

    def close(self) -> None:
        """Release per-job data (nothing is held here)."""

    def get_token_merging_ratio(self, for_hr: bool = False) -> float:
        return float(self.token_merging_ratio or 0)

    def js(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    """A txt2img job's `p`."""

    params_class = Txt2ImgParams


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    """An img2img / inpainting job's `p` (`init_images`, `mask`, `denoising_strength`, ...)."""

    params_class = Img2ImgParams

    @property
    def image_mask(self) -> Any:
        return self.params.mask

    @image_mask.setter
    def image_mask(self, value: Any) -> None:
        self.params.mask = value


class Processed(CoreProcessed):
    """A1111's `Processed(p, images_list, seed, info, ...)` constructor over the core result class."""

    def __init__(
        self,
        p: StableDiffusionProcessing,
        images_list: list[Any],
        seed: int = -1,
        info: str = "",
        subseed: int | None = None,
        all_prompts: list[str] | None = None,
        all_negative_prompts: list[str] | None = None,
        all_seeds: list[int] | None = None,
        all_subseeds: list[int] | None = None,
        index_of_first_image: int = 0,
        infotexts: list[str] | None = None,
        comments: str = "",
        extra_images_list: list[Any] | None = None,
    ) -> None:
        parameters = dataclasses.asdict(p.params) if hasattr(p, "params") else {}
        parameters.pop("init_images", None)
        parameters.pop("mask", None)
        parameters["extra_generation_params"] = dict(getattr(p, "extra_generation_params", {}) or {})
        super().__init__(
            images=list(images_list),
            infotexts=list(infotexts) if infotexts is not None else [info] * len(images_list),
            prompt=p.prompt if isinstance(p.prompt, str) else (p.prompt[0] if p.prompt else ""),
            negative_prompt=p.negative_prompt if isinstance(p.negative_prompt, str) else "",
            seed=seed,
            subseed=subseed if subseed is not None else -1,
            all_prompts=all_prompts or list(getattr(p, "all_prompts", []) or []),
            all_negative_prompts=all_negative_prompts or list(getattr(p, "all_negative_prompts", []) or []),
            all_seeds=all_seeds or list(getattr(p, "all_seeds", []) or [seed]),
            all_subseeds=all_subseeds or list(getattr(p, "all_subseeds", []) or []),
            parameters=parameters,
            index_of_first_image=index_of_first_image,
            comments=[comments] if comments else [],
        )
        self.extra_images = list(extra_images_list or [])

    @property
    def extra_generation_params(self) -> dict[str, Any]:
        return self.parameters.get("extra_generation_params", {})


def fix_seed(p: StableDiffusionProcessing) -> None:
    """Replace a random seed (-1) with a concrete one, as A1111's `fix_seed`."""
    p.seed = resolve_seed(int(p.seed))
    p.subseed = resolve_seed(int(p.subseed))


def get_fixed_seed(seed: int | None) -> int:
    """A concrete seed for `seed` (-1, None or empty → random)."""
    if seed is None or seed == "" or int(seed) < 0:
        return resolve_seed(-1)
    return int(seed)


def create_infotext(
    p: StableDiffusionProcessing,
    all_prompts: list[str],
    all_seeds: list[int],
    all_subseeds: list[int],
    comments=None,
    iteration: int = 0,
    position_in_batch: int = 0,
    **kwargs: Any,
) -> str:
    """A1111's `create_infotext`: the infotext of image `iteration × batch_size + position_in_batch`."""
    from modules.generation.infotext_fields import generation_parameters
    from modules.imaging.infotext import create_infotext as core_create_infotext
    from modules.plugins import runtime

    index = iteration * p.batch_size + position_in_batch
    context = runtime.get_context()
    options = context.options.copy_with(p.override_settings) if context is not None else None
    info = context.models.info if context is not None else None
    values = generation_parameters(
        p.params,
        options,
        seed=all_seeds[index] if index < len(all_seeds) else p.seed,
        subseed=all_subseeds[index] if index < len(all_subseeds) else p.subseed,
        clip_skip=int(options.CLIP_stop_at_last_layers) if options is not None else 1,
        model_name=info.model_name if info else "",
        model_hash=info.shorthash if info else None,
        version=getattr(context, "version", ""),
        extra=dict(p.extra_generation_params or {}),
    )
    prompts = all_prompts or [p.prompt]
    negatives = p.all_negative_prompts or [p.negative_prompt]
    return core_create_infotext(prompts[min(index, len(prompts) - 1)], negatives[min(index, len(negatives) - 1)], values)
