"""One Gradio control per registered setting (`OptionInfo`), for the Settings tab and quicksettings.

The control's value is a callable reading the current setting, so a page reload shows what is saved.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from modules.app.options import OptionInfo, Options


def setting_label(key: str, info: OptionInfo) -> str:
    return info.label or key


def setting_component(key: str, info: OptionInfo, options: Options, *, elem_prefix: str = "setting_", **kwargs: Any) -> Any:
    """Build the control for `key`: checkbox, dropdown, slider, number or text box by the default's type."""
    label = setting_label(key, info)
    elem_id = f"{elem_prefix}{key}"
    default = info.default

    def current() -> Any:
        value = options.get(key)
        if isinstance(default, list) and key != "quicksettings_list":
            return ", ".join(str(item) for item in value or [])
        return value

    if isinstance(default, bool):
        return gr.Checkbox(label=label, value=current, elem_id=elem_id, **kwargs)
    if key == "quicksettings_list":
        return gr.Dropdown(label=label, choices=list(options.infos), value=current, multiselect=True, elem_id=elem_id, **kwargs)
    choices = info.choice_list()
    if choices:
        return gr.Dropdown(label=label, choices=choices, value=current, elem_id=elem_id, allow_custom_value=False, **kwargs)
    if isinstance(default, (int, float)) and info.minimum is not None and info.maximum is not None:
        step = info.step or (1 if isinstance(default, int) else 0.01)
        return gr.Slider(info.minimum, info.maximum, value=current, step=step, label=label, elem_id=elem_id, **kwargs)
    if isinstance(default, (int, float)):
        return gr.Number(label=label, value=current, precision=0 if isinstance(default, int) else None, elem_id=elem_id, **kwargs)
    return gr.Textbox(label=label, value=current, elem_id=elem_id, **kwargs)


def component_value_to_setting(info: OptionInfo, value: Any) -> Any:
    """A control's value back in the setting's type (`Options.validate` does the checking)."""
    if isinstance(info.default, int) and not isinstance(info.default, bool) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
