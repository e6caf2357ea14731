"""A1111's API adapters for scripts: `script_name` + `script_args`, `alwayson_scripts`,
`/sdapi/v1/scripts` and `/sdapi/v1/script-info`."""

from __future__ import annotations

from typing import Any

from modules.plugins.system import ScriptSelection


def selection_from_request(context: Any, body: dict[str, Any], is_img2img: bool) -> ScriptSelection | None:
    """The request's script choice, checked against the loaded scripts; `ValueError` names the field."""
    script_name = body.get("script_name")
    script_args = body.get("script_args") or []
    alwayson = body.get("alwayson_scripts") or {}
    if script_name is not None and not isinstance(script_name, str):
        raise ValueError("script_name: expected a string")
    if not isinstance(script_args, list):
        raise ValueError("script_args: expected a list")
    if not isinstance(alwayson, dict):
        raise ValueError('alwayson_scripts: expected an object {"script name": {"args": [...]}}')
    if script_name in ("", "None"):
        script_name = None
    selection = ScriptSelection(script_name, list(script_args), dict(alwayson))
    system = getattr(context, "scripts", None)
    if system is None:
        if selection.script_name or selection.alwayson_scripts:
            raise ValueError("script_name: no scripts are loaded")
        return None
    system.check_selection(selection, is_img2img)
    return selection


def scripts_list(context: Any) -> dict[str, list[str]]:
    """Lower-cased titles of the scripts each tab offers (dropdown and always-on), as A1111."""
    system = getattr(context, "scripts", None)
    if system is None:
        return {"txt2img": [], "img2img": []}
    return {
        "txt2img": [script.name for script in system.txt2img.scripts if script.name],
        "img2img": [script.name for script in system.img2img.scripts if script.name],
    }


def script_info(context: Any) -> list[dict[str, Any]]:
    """Each script with its arguments (label, default value, bounds, choices), as A1111's /script-info."""
    system = getattr(context, "scripts", None)
    if system is None:
        return []
    items = []
    for runner in (system.txt2img, system.img2img):
        runner.ensure_ui()
        for script in runner.scripts:
            items.append(
                {
                    "name": script.name,
                    "is_alwayson": bool(script.alwayson),
                    "is_img2img": runner.is_img2img,
                    "args": [_describe(control) for control in script.controls or []],
                }
            )
    return items


def _describe(control: Any) -> dict[str, Any]:
    choices = getattr(control, "choices", None)
    if choices:
        choices = [choice[0] if isinstance(choice, tuple | list) else choice for choice in choices]
    value = getattr(control, "value", None)
    return {
        "label": getattr(control, "label", None),
        "value": value if isinstance(value, str | int | float | bool | list | dict | type(None)) else str(value),
        "minimum": getattr(control, "minimum", None),
        "maximum": getattr(control, "maximum", None),
        "step": getattr(control, "step", None),
        "choices": choices or None,
    }
