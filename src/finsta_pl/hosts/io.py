"""Enhanced-host checkpoints: what post-training hands to downstream tasks.

The file holds the host's config, the text side it was trained with (the word list, or the tokenizer folder)
and its weights, nothing of Finsta: downstream fine-tuning and inference run the host alone (graphs off).
How weights are copied is the host's business (:meth:`Host.load_exported`): the built-in host maps word
embeddings *by word*, so a task whose vocabulary differs (questions instead of captions) keeps every shared
word's post-trained embedding.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from finsta_pl.errors import FinstaError
from finsta_pl.hosts.base import Host

#: data_info keys that describe the text side; stored with the weights.
TEXT_KEYS = ("vocab", "tokenizer", "tokenizer_size")


def export_host(host: Host, data_info: dict[str, Any], path: str | Path) -> Path:
    """Write ``{config, <text keys>, state_dict}`` to ``path`` (atomically: a temp file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    state = {k: v.detach().cpu() for k, v in host.state_dict().items()}
    text = {k: data_info[k] for k in TEXT_KEYS if k in data_info}
    torch.save({"config": {"name": host.name, **asdict(host.config)}, **text, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def load_host_weights(host: Host, data_info: dict[str, Any], path: str | Path) -> str:
    """Copy an exported host's weights into ``host``; returns a one-line account of what was copied."""
    path = Path(path)
    if not path.is_file():
        raise FinstaError(f"{path}: enhanced host checkpoint not found (run the post-training config first)")
    try:  # weights only: an exported host is tensors and plain values; anything else is refused, never run
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise FinstaError(f"{path}: refused, not a plain weights file (torch.load weights_only=True: "
                          f"{str(exc).strip().splitlines()[-1][:300]})") from None
    name = saved["config"].get("name", "small_vlm")
    if name != host.name:
        raise FinstaError(f"{path}: an exported {name} host, but this model's host is {host.name}")
    for key in host.shape_keys:
        if saved["config"].get(key) != getattr(host.config, key):
            raise FinstaError(f"{path}: host {key}={saved['config'].get(key)} but this model has "
                              f"{getattr(host.config, key)}")
    try:
        return host.load_exported(saved, data_info)
    except (RuntimeError, KeyError) as exc:
        raise FinstaError(f"{path}: host weights do not fit ({exc})") from None
