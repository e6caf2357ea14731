"""A1111's `modules.ui_components` for extensions: small Gradio wrappers under A1111's names.

Thin subclasses of Gradio 6 blocks and components that accept and drop keyword arguments Gradio no
longer takes (e.g. `variant="compact"` on rows), so extensions written for Gradio 3 keep working.
Core code never imports this module.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

_LAYOUT_DROPPED = ("variant",)


def _clean(kwargs: dict[str, Any], dropped: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if key not in dropped}


class FormComponent:
    """Marker base A1111 gives form-like components."""

    webui_do_not_create_gradio_pyi_thank_you = True


class FormRow(gr.Row):
    """A row of form controls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_clean(kwargs, _LAYOUT_DROPPED))


class FormColumn(gr.Column):
    """A column of form controls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_clean(kwargs, _LAYOUT_DROPPED))


class FormGroup(gr.Group):
    """A group of form controls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_clean(kwargs, _LAYOUT_DROPPED))


class FormHTML(FormComponent, gr.HTML):
    """HTML placed among form controls."""


class FormColorPicker(FormComponent, gr.ColorPicker):
    """A colour picker among form controls."""


class ToolButton(gr.Button):
    """A small square button holding one emoji or symbol."""

    def __init__(self, value: str = "", *args: Any, **kwargs: Any) -> None:
        classes = list(kwargs.pop("elem_classes", []) or [])
        kwargs = _clean(kwargs, ("tooltip",)) if "tooltip" not in gr.Button.__init__.__code__.co_varnames else kwargs
        super().__init__(value, *args, elem_classes=["tool", *classes], **kwargs)


class ResizeHandleRow(gr.Row):
    """A row whose columns the user may resize (here: an ordinary row)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_clean(kwargs, _LAYOUT_DROPPED))


class InputAccordion(gr.Checkbox):
    """A1111's checkbox shown as an accordion: its value is the checkbox's; `with` opens the accordion."""

    def __init__(self, value: bool = False, **kwargs: Any) -> None:
        label = kwargs.get("label", "")
        self.accordion_kwargs = {"label": label, "open": bool(kwargs.pop("open", value))}
        super().__init__(value=value, **_clean(kwargs, ("visible_checkbox",)))
        self.accordion = gr.Accordion(**self.accordion_kwargs, render=False)

    def __enter__(self) -> gr.Accordion:
        self.accordion.render()
        return self.accordion.__enter__()

    def __exit__(self, *args: Any) -> None:
        self.accordion.__exit__(*args)


class DropdownMulti(FormComponent, gr.Dropdown):
    """A dropdown allowing several choices."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiselect=True, **kwargs)


class DropdownEditable(FormComponent, gr.Dropdown):
    """A dropdown that also accepts typed values."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_custom_value=True, **kwargs)
