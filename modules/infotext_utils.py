"""A1111's `modules.infotext_utils` for extensions: infotext parsing and paste-field helpers.

A thin facade over modules/imaging/infotext.py; core code never imports this module.
"""

from __future__ import annotations

from typing import Any

from modules.imaging.infotext import create_infotext, parse_infotext, quote_value, unquote_value
from modules.plugins.callbacks import registry

__all__ = [
    "ParamBinding",
    "create_infotext",
    "parse_generation_parameters",
    "quote",
    "unquote",
    "paste_fields",
    "registered_param_bindings",
]

paste_fields: dict[str, dict[str, Any]] = {}
registered_param_bindings: list[Any] = []


def parse_generation_parameters(x: str, skip_fields: list[str] | None = None) -> dict[str, Any]:
    """An infotext as a dict of fields (A1111's keys); infotext-pasted callbacks may add to it."""
    result = dict(parse_infotext(x or ""))
    for key in skip_fields or []:
        result.pop(key, None)
    registry.fire("callbacks_infotext_pasted", x, result)
    return result


def quote(text: str) -> str:
    return quote_value(str(text))


def unquote(text: str) -> str:
    return unquote_value(text)


class ParamBinding:
    """A request to paste infotext into `tabname`'s fields (kept for extensions that register one)."""

    def __init__(
        self,
        paste_button: Any,
        tabname: str,
        source_text_component: Any = None,
        source_image_component: Any = None,
        source_tabname: str | None = None,
        override_settings_component: Any = None,
        paste_field_names: list[str] | None = None,
    ) -> None:
        self.paste_button = paste_button
        self.tabname = tabname
        self.source_text_component = source_text_component
        self.source_image_component = source_image_component
        self.source_tabname = source_tabname
        self.override_settings_component = override_settings_component
        self.paste_field_names = paste_field_names or []


def register_paste_params_button(binding: ParamBinding) -> None:
    registered_param_bindings.append(binding)


def add_paste_fields(tabname: str, init_img: Any, fields: list[Any] | None, override_settings_component: Any = None) -> None:
    paste_fields[tabname] = {"init_img": init_img, "fields": list(fields or []), "override_settings_component": override_settings_component}
