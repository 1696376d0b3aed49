"""The demo's model: a Hugging Face-like folder on disk, and the checks on what came back."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tarfile
import threading
from pathlib import Path
from typing import Any

from ..toolkit import TarArchive, list_folder

__all__ = ["expected_archive", "matches_folder", "write_model_folder"]

_BLOCK = 4 * 1024 * 1024
_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 2048,
    "num_attention_heads": 16,
    "num_hidden_layers": 16,
    "vocab_size": 32000,
    "torch_dtype": "float16",
}


def _json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _write_shard(path: Path, tensor: str, weights_bytes: int, stop: threading.Event) -> int:
    """A safetensors file: an 8-byte header length, the JSON header, random float16 data."""
    elements = max(1, weights_bytes // 2)
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            tensor: {"dtype": "F16", "shape": [elements], "data_offsets": [0, elements * 2]},
        }
    ).encode()
    block = os.urandom(min(_BLOCK, elements * 2))
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)) + header)
        left = elements * 2
        while left:
            if stop.is_set():
                raise InterruptedError("stopped")
            count = min(left, len(block))
            out.write(block[:count])
            left -= count
    return path.stat().st_size


def write_model_folder(
    root: Path, weights_bytes: int, *, shards: int = 3, stop: threading.Event | None = None
) -> int:
    """Write config, tokenizer and ``shards`` safetensors files under ``root``; its file count.

    A ``.git/`` and a ``.cache/huggingface/`` folder are written too, as a checkout has
    them: the import leaves both out by default.
    """
    stop = stop or threading.Event()
    root.mkdir(parents=True, exist_ok=True)
    _json(root / "config.json", _CONFIG)
    _json(root / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2})
    vocab = {f"tok{i}": i for i in range(2000)}
    _json(root / "tokenizer.json", {"version": "1.0", "model": {"type": "BPE", "vocab": vocab}})
    _json(root / "tokenizer_config.json", {"bos_token": "<s>", "eos_token": "</s>"})
    _json(root / "special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>"})
    (root / "README.md").write_text("# demo-model\n\nRandom weights for the kore-models demo.\n")
    weight_map = {}
    for number in range(1, shards + 1):
        name = f"model-{number:05d}-of-{shards:05d}.safetensors"
        tensor = f"model.layers.{number - 1}.weight"
        _write_shard(root / name, tensor, weights_bytes // shards, stop)
        weight_map[tensor] = name
    _json(root / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    lock_dir = root / ".cache" / "huggingface" / "download"
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "config.json.lock").write_text("")
    return 7 + shards


def expected_archive(root: Path) -> tuple[int, str, list[str]]:
    """The size, sha256 and member names of the tar the import sends for ``root``."""
    archive = TarArchive(list_folder(root))
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    offset = 0
    with archive.open_reader() as reader:
        while offset < archive.size:
            count = reader.readinto(offset, memoryview(buffer))
            digest.update(memoryview(buffer)[:count])
            offset += count
    names = [entry.path for entry in archive.listing.entries]
    return archive.size, digest.hexdigest(), names


def matches_folder(downloaded: Path, names: list[str]) -> bool:
    """Whether the downloaded tar lists exactly ``names``, in order (read with tarfile)."""
    with tarfile.open(downloaded, mode="r:") as tar:
        return tar.getnames() == names
