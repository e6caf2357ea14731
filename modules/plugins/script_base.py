"""The `Script` class extension scripts subclass, with A1111's methods, attributes and call order.

A script file defines one or more `Script` subclasses. The runner instantiates each one for txt2img
and for img2img, asks `title()` and `show(is_img2img)`, builds `ui(is_img2img)` and then calls the
hooks below at the moments A1111 calls them. Every hook gets `p` (the processing object) and the
script's own slice of the argument list (`script_args[args_from:args_to]`) as positional arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AlwaysVisible = object()
"""Returned by `show()` for a script that runs on every generation with its UI always on screen."""


@dataclass
class PostprocessImageArgs:
    """Given to `postprocess_image`; a script may replace `image`."""

    image: Any


@dataclass
class PostprocessBatchListArgs:
    """Given to `postprocess_batch_list`; a script may add, remove or replace items of `images`."""

    images: list[Any]


@dataclass
class OnComponent:
    """A callback registered with `Script.on_before_component` / `on_after_component` for one elem_id."""

    component: Any
    callback: Any = None


@dataclass
class ScriptFile:
    """Where a script was loaded from: its extension folder (or the app's scripts/), file and module name."""

    basedir: str
    filename: str
    path: str
    extension_name: str = "built-in"


@dataclass
class ScriptClassData:
    """A Script subclass found in a file, with the file it came from."""

    script_class: type
    path: str
    basedir: str
    module: Any
    extension_name: str = "built-in"
    extra: dict[str, Any] = field(default_factory=dict)


class Script:
    """Subclass this. Defaults do nothing, so a script overrides only the hooks it needs.

    Attributes the runner sets: `filename`, `args_from`, `args_to`, `alwayson`, `is_txt2img`,
    `is_img2img`, `group`, `infotext_fields`, `paste_field_names`, `extension_name`.
    """

    name: str | None = None
    section: str | None = None
    filename: str | None = None
    args_from: int | None = None
    args_to: int | None = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname: str | None = None
    group: Any = None
    create_group = True
    infotext_fields: list | None = None
    paste_field_names: list[str] | None = None
    api_info: Any = None
    controls: list | None = None
    sorting_priority = 0
    extension_name = "built-in"
    on_before_component_elem_id: list | None = None
    on_after_component_elem_id: list | None = None

    def title(self) -> str:
        """The name shown in the Script dropdown and used by the API (lower-cased) to select the script."""
        raise NotImplementedError()

    def ui(self, is_img2img: bool) -> list | None:
        """Build this script's Gradio components; their values become its arguments, in order."""
        return None

    def show(self, is_img2img: bool) -> bool | object:
        """False: hidden; True: an entry in the Script dropdown; `AlwaysVisible`: runs on every generation."""
        return True

    def run(self, p, *args) -> Any:
        """Called instead of normal processing when picked in the Script dropdown; returns `Processed`
        (or None to let normal processing run)."""
        return None

    def setup(self, p, *args) -> None:
        """Called first, before any processing begins (A1111 uses it to set up `p`)."""

    def before_process(self, p, *args) -> None:
        """Called before processing begins, before prompts and seeds exist; may change any field of `p`."""

    def process(self, p, *args) -> None:
        """Called once prompts and seeds are made (`p.all_prompts`, `p.all_seeds`); may change them."""

    def before_process_batch(self, p, *args, **kwargs) -> None:
        """Called before each batch's conditioning; kwargs: batch_number, prompts, seeds, subseeds."""

    def after_extra_networks_activate(self, p, *args, **kwargs) -> None:
        """Called after extra networks of a batch were activated (same kwargs as process_batch)."""

    def process_batch(self, p, *args, **kwargs) -> None:
        """Called right before each batch is sampled; kwargs: batch_number, prompts, seeds, subseeds."""

    def postprocess_batch(self, p, *args, **kwargs) -> None:
        """Called after a batch is decoded; kwargs: images (a B×3×H×W tensor in [0, 1]), batch_number."""

    def postprocess_batch_list(self, p, pp: PostprocessBatchListArgs, *args, **kwargs) -> None:
        """Called with the batch as a list of images (`pp.images`); items may be added or removed."""

    def postprocess_image(self, p, pp: PostprocessImageArgs, *args) -> None:
        """Called for each image before it is saved; may replace `pp.image`."""

    def postprocess(self, p, processed, *args) -> None:
        """Called once after all batches with the `Processed` result."""

    def before_component(self, component, **kwargs) -> None:
        """Called before each Gradio component of the page is created (kwargs: its constructor's)."""

    def after_component(self, component, **kwargs) -> None:
        """Called after each Gradio component of the page is created."""

    def on_before_component(self, callback, *, elem_id: str) -> None:
        """Call `callback(OnComponent)` before the component with `elem_id` is created."""
        if self.on_before_component_elem_id is None:
            self.on_before_component_elem_id = []
        self.on_before_component_elem_id.append((elem_id, callback))

    def on_after_component(self, callback, *, elem_id: str) -> None:
        """Call `callback(OnComponent)` after the component with `elem_id` is created."""
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))

    def describe(self) -> str:
        """Unused; kept for A1111 compatibility."""
        return ""

    def elem_id(self, item_id: str) -> str:
        """A page-unique element id for one of this script's components (A1111's format)."""
        need_tabname = self.show(self.is_img2img) == AlwaysVisible
        tabname = ("img2img" if self.is_img2img else "txt2img") + "_" if need_tabname else ""
        title = "".join(character if character.isalnum() else "_" for character in self.title().lower()).strip("_")
        return f"script_{tabname}{title}_{item_id}"
