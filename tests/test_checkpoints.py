"""Checkpoint discovery, hashing, cache.json handling and lookup."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from modules.models.checkpoints import (
    CheckpointInfo,
    HashCache,
    find_checkpoint,
    legacy_model_hash,
    list_checkpoints,
    list_vaes,
    vae_beside_checkpoint,
)


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    root = tmp_path / "Stable-diffusion"
    _write(root / "zeta.safetensors", b"z" * 3000)
    _write(root / "Alpha.ckpt", b"a" * 2_000_000)
    _write(root / "sub" / "beta.safetensors", b"b" * 5000)
    _write(root / "sub" / "deeper" / "gamma.safetensors", b"g" * 7000)
    _write(root / "zeta.vae.safetensors", b"v" * 100)
    _write(root / "notes.txt", b"not a model")
    return root


def test_discovery_is_recursive_sorted_and_skips_non_checkpoints(models_dir: Path, tmp_path: Path) -> None:
    infos = list_checkpoints([models_dir], HashCache(tmp_path / "cache.json"))
    assert [info.name for info in infos] == [
        "Alpha.ckpt",
        "sub/beta.safetensors",
        "sub/deeper/gamma.safetensors",
        "zeta.safetensors",
    ]
    gamma = infos[2]
    assert gamma.filename == (models_dir / "sub" / "deeper" / "gamma.safetensors").resolve()
    assert gamma.model_name == "gamma"
    assert gamma.api_model_name == "sub_deeper_gamma"
    assert gamma.is_safetensors and not infos[0].is_safetensors
    # Without a cached hash the title is the bare name, as in A1111.
    assert gamma.sha256 is None and gamma.title == "sub/deeper/gamma.safetensors"


def test_titles_use_sha256_shorthash(models_dir: Path, tmp_path: Path) -> None:
    infos = list_checkpoints([models_dir], HashCache(tmp_path / "cache.json"), compute_hashes=True)
    for info in infos:
        expected = _sha(info.filename)
        assert info.sha256 == expected
        assert info.shorthash == expected[:10]
        assert info.title == f"{info.name} [{expected[:10]}]"
    alpha = infos[0]
    data = alpha.filename.read_bytes()
    assert alpha.legacy_hash == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    assert legacy_model_hash(alpha.filename) == alpha.legacy_hash


def test_cache_json_format_and_reuse(models_dir: Path, tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.json"
    list_checkpoints([models_dir], HashCache(cache_path), compute_hashes=True)
    data = json.loads(cache_path.read_text())
    entry = data["hashes"]["checkpoint/sub/beta.safetensors"]
    beta = models_dir / "sub" / "beta.safetensors"
    assert entry["sha256"] == _sha(beta)
    assert entry["mtime"] == os.path.getmtime(beta)
    assert entry["size"] == beta.stat().st_size

    # A planted value proves that an unchanged file is not hashed again.
    entry["sha256"] = "f" * 64
    cache_path.write_text(json.dumps(data))
    infos = list_checkpoints([models_dir], HashCache(cache_path))
    beta_info = next(info for info in infos if info.name == "sub/beta.safetensors")
    assert beta_info.sha256 == "f" * 64
    assert beta_info.calculate_sha256(HashCache(cache_path)) == "f" * 64

    # Changing the file (content, size and mtime) invalidates the entry.
    _write(beta, b"changed" * 100)
    os.utime(beta, (1_700_000_000, 1_700_000_000))
    cache = HashCache(cache_path)
    assert cache.cached_sha256("checkpoint/sub/beta.safetensors", beta) is None
    infos = list_checkpoints([models_dir], cache, compute_hashes=True)
    assert next(info for info in infos if info.name == "sub/beta.safetensors").sha256 == _sha(beta)
    assert json.loads(cache_path.read_text())["hashes"]["checkpoint/sub/beta.safetensors"]["mtime"] == 1_700_000_000


def test_cache_entry_with_same_mtime_but_other_size_is_stale(tmp_path: Path) -> None:
    model = _write(tmp_path / "m.safetensors", b"12345")
    cache_path = tmp_path / "cache.json"
    stat = model.stat()
    cache_path.write_text(json.dumps({"hashes": {"checkpoint/m.safetensors": {"mtime": stat.st_mtime, "sha256": "0" * 64, "size": 4}}}))
    assert HashCache(cache_path).cached_sha256("checkpoint/m.safetensors", model) is None


def test_a1111_cache_without_size_is_accepted_and_other_sections_kept(tmp_path: Path) -> None:
    model = _write(tmp_path / "m.safetensors", b"payload")
    other = _write(tmp_path / "n.safetensors", b"other payload")
    cache_path = tmp_path / "cache.json"
    a1111 = {
        "hashes": {"checkpoint/m.safetensors": {"mtime": model.stat().st_mtime, "sha256": "a" * 64}},
        "safetensors-metadata": {"checkpoint/m.safetensors": {"mtime": 1.0, "value": {"x": "y"}}},
    }
    cache_path.write_text(json.dumps(a1111))
    cache = HashCache(cache_path)
    assert cache.cached_sha256("checkpoint/m.safetensors", model) == "a" * 64
    assert cache.sha256("checkpoint/n.safetensors", other) == _sha(other)
    written = json.loads(cache_path.read_text())
    assert written["safetensors-metadata"] == a1111["safetensors-metadata"]
    assert written["hashes"]["checkpoint/m.safetensors"]["sha256"] == "a" * 64
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_cache_is_ignored_and_rewritten(models_dir: Path, tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.json"
    cache_path.write_text('{"hashes": {"checkpoint/zeta.safe')
    infos = list_checkpoints([models_dir], HashCache(cache_path), compute_hashes=True)
    assert all(info.sha256 == _sha(info.filename) for info in infos)
    rewritten = json.loads(cache_path.read_text())
    assert set(rewritten["hashes"]) == {f"checkpoint/{info.name}" for info in infos}

    cache_path.write_text('["not", "a", "table"]')
    assert HashCache(cache_path).cached_sha256("checkpoint/zeta.safetensors", models_dir / "zeta.safetensors") is None


def test_find_checkpoint_variants(models_dir: Path, tmp_path: Path) -> None:
    infos = list_checkpoints([models_dir], HashCache(tmp_path / "cache.json"), compute_hashes=True)
    beta = next(info for info in infos if info.name == "sub/beta.safetensors")
    zeta = next(info for info in infos if info.name == "zeta.safetensors")
    alpha = next(info for info in infos if info.name == "Alpha.ckpt")
    queries = [
        beta.title,
        "sub/beta.safetensors",
        "sub/beta",
        "beta",
        "sub_beta",
        beta.shorthash,
        beta.sha256,
        str(beta.filename),
        "sub/beta.safetensors [0123456789]",  # stale hash in an old infotext/setting
        "beta.safe",  # substring of the title
    ]
    for query in queries:
        assert find_checkpoint(infos, query) is beta, query
    assert find_checkpoint(infos, Path(beta.filename)) is beta
    assert find_checkpoint(infos, f"zeta.safetensors [{zeta.shorthash}]") is zeta
    assert zeta.legacy_hash is None and alpha.legacy_hash
    assert find_checkpoint(infos, alpha.legacy_hash) is alpha
    assert find_checkpoint(infos, "does-not-exist") is None
    assert find_checkpoint(infos, "") is None


def test_find_prefers_shortest_title_for_substrings(tmp_path: Path) -> None:
    infos = [
        CheckpointInfo(filename=tmp_path / "model-v2-extra.safetensors", name="model-v2-extra.safetensors"),
        CheckpointInfo(filename=tmp_path / "model-v2.safetensors", name="model-v2.safetensors"),
    ]
    assert find_checkpoint(infos, "model-v") is infos[1]


def test_list_vaes_and_vae_beside_checkpoint(models_dir: Path, tmp_path: Path) -> None:
    vae_dir = tmp_path / "VAE"
    _write(vae_dir / "vae-ft-mse-840000-ema-pruned.safetensors", b"1")
    _write(vae_dir / "sdxl" / "sdxl_vae.safetensors", b"2")
    _write(vae_dir / "old.pt", b"3")
    _write(vae_dir / "legacy.ckpt", b"4")
    _write(vae_dir / "readme.txt", b"5")
    vaes = list_vaes([vae_dir], checkpoint_dirs=[models_dir])
    assert list(vaes) == [
        "legacy.ckpt",
        "old.pt",
        "sdxl_vae.safetensors",
        "vae-ft-mse-840000-ema-pruned.safetensors",
        "zeta.vae.safetensors",
    ]
    assert vaes["sdxl_vae.safetensors"] == (vae_dir / "sdxl" / "sdxl_vae.safetensors").resolve()

    assert vae_beside_checkpoint(models_dir / "zeta.safetensors") == models_dir / "zeta.vae.safetensors"
    assert vae_beside_checkpoint(models_dir / "Alpha.ckpt") is None
    _write(models_dir / "Alpha.vae.pt", b"x")
    assert vae_beside_checkpoint(models_dir / "Alpha.ckpt") == models_dir / "Alpha.vae.pt"


def test_missing_folders_are_skipped(tmp_path: Path) -> None:
    assert list_checkpoints([tmp_path / "nope"], HashCache(tmp_path / "cache.json")) == []
    assert list_vaes([tmp_path / "nope"]) == {}
