"""Settings: validation names the setting, per-job copies leave the shared settings alone, atomic save."""

import json

import pytest

from modules.app.options import OptionError, Options


def test_defaults_and_attribute_access():
    options = Options()
    assert options.samples_format == "png"
    assert options.CLIP_stop_at_last_layers == 1
    assert options.randn_source == "GPU"


def test_invalid_value_names_the_setting_and_changes_nothing():
    options = Options()
    with pytest.raises(OptionError, match="CLIP_stop_at_last_layers"):
        options.update({"samples_format": "jpg", "CLIP_stop_at_last_layers": 99})
    assert options.samples_format == "png"
    with pytest.raises(OptionError, match="randn_source"):
        options.set("randn_source", "quantum")
    with pytest.raises(OptionError, match="samples_save"):
        options.set("samples_save", "yes")


def test_copy_with_overrides_does_not_touch_shared_settings():
    options = Options()
    job = options.copy_with({"CLIP_stop_at_last_layers": 2, "randn_source": "CPU"})
    assert job.CLIP_stop_at_last_layers == 2 and job.randn_source == "CPU"
    assert options.CLIP_stop_at_last_layers == 1 and options.randn_source == "GPU"


def test_save_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "config.json"
    options = Options()
    options.load(path)
    options.set("samples_format", "webp")
    options.set("unknown_extension_key", {"kept": True})
    options.save()
    assert json.loads(path.read_text())["samples_format"] == "webp"
    assert [item.name for item in tmp_path.iterdir()] == ["config.json"]
    reloaded = Options()
    reloaded.load(path)
    assert reloaded.samples_format == "webp"
    assert reloaded.get("unknown_extension_key") == {"kept": True}


def test_corrupt_config_is_kept_aside(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    options = Options()
    options.load(path)
    assert options.samples_format == "png"
    assert (tmp_path / "config.json.bad").read_text() == "{not json"
