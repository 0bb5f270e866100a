"""Bundled weights: a manifest of checksums, verified loading, and atomic saving.

Every weights file in `diffusion_lab/assets/` is listed in `assets/weights.json` with its
SHA-256, the command that trained it, how long that took and on what. Loading checks the
checksum and uses `torch.load(..., weights_only=True)`; nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import torch

from .data import ASSETS

__all__ = ["MANIFEST", "load_bundled", "save_bundled"]

MANIFEST = ASSETS / "weights.json"


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}


def load_bundled(name: str) -> dict:
    """Load the bundled weights file `name` (e.g. "digit_classifier.pt") after checking its hash."""
    entry = _manifest().get(name)
    path = ASSETS / name
    if entry is None or not path.is_file():
        known = ", ".join(sorted(_manifest())) or "none"
        raise FileNotFoundError(f"no bundled weights named {name!r} (bundled: {known})")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry["sha256"]:
        raise OSError(
            f"{name} is damaged or was changed: its SHA-256 is {digest[:12]}..., the manifest "
            f"says {entry['sha256'][:12]}.... Restore it from the repository, or retrain it with "
            f"`{entry.get('trained_by', 'its training script')}`."
        )
    buffer = io.BytesIO(raw)  # load the bytes that were checked, not the file again
    return torch.load(buffer, map_location="cpu", weights_only=True)


def save_bundled(name: str, payload: dict, **info) -> Path:
    """Write `payload` to assets/`name` atomically; record its hash and `info` in the manifest."""
    path = ASSETS / name
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    manifest = _manifest()
    manifest[name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **info}
    tmp = MANIFEST.with_name(MANIFEST.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, MANIFEST)
    return path
