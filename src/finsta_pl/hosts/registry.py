"""Host construction by name: the one place that knows which hosts exist and what text side each needs."""

from __future__ import annotations

from typing import Any

from finsta_pl.errors import FinstaError
from finsta_pl.hosts.base import Host, HostConfig, host_settings

HOSTS = ("small_vlm", "clip4clip")


def build_host(config: HostConfig, data_info: dict[str, Any]) -> Host:
    """The host ``config.name`` sized for the DataModule's text side (``data_info``)."""
    if config.name == "small_vlm":
        if "vocab" not in data_info:
            raise FinstaError("host small_vlm needs a word vocabulary: set data.init_args.tokenizer to 'words'")
        from finsta_pl.hosts.small_vlm import SmallVLM, SmallVLMConfig

        return SmallVLM(host_settings(SmallVLMConfig, config), len(data_info["vocab"]))
    if config.name == "clip4clip":
        if "tokenizer_size" not in data_info:
            raise FinstaError("host clip4clip needs its checkpoint's tokenizer: set data.init_args.tokenizer to the "
                              "checkpoint folder")
        from finsta_pl.hosts.clip4clip import CLIP4Clip, CLIP4ClipConfig

        return CLIP4Clip(host_settings(CLIP4ClipConfig, config), data_info["tokenizer_size"])
    raise FinstaError(f"unknown host {config.name!r}; choose one of {list(HOSTS)}")
