"""Each host has its own typed config (issue 25); the flat ``host:`` section of the YAML (``HostConfig``) fills it."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from finsta_pl.hosts.base import HostConfig, host_settings
from finsta_pl.hosts.clip4clip import CLIP4ClipConfig
from finsta_pl.hosts.small_vlm import SmallVLMConfig

HOST_CONFIGS = (SmallVLMConfig, CLIP4ClipConfig)


@pytest.mark.parametrize("cls", HOST_CONFIGS, ids=lambda c: c.__name__)
def test_a_host_config_is_a_part_of_the_yaml_section_with_the_same_defaults(cls: type) -> None:
    face = {f.name: f for f in fields(HostConfig)}
    for f in fields(cls):
        assert f.name in face, f"{cls.__name__}.{f.name}: not settable from the host: section"
        assert f.default == face[f.name].default, f"{cls.__name__}.{f.name}: another default than HostConfig's"


@pytest.mark.parametrize("cls", HOST_CONFIGS, ids=lambda c: c.__name__)
def test_every_field_says_what_it_is(cls: type) -> None:
    lines = inspect.getsource(cls).splitlines()
    for f in fields(cls):
        line = next(x for x in lines if x.strip().startswith(f"{f.name}:"))
        assert "#" in line, f"{cls.__name__}.{f.name}: no comment"


def test_the_yaml_section_fills_the_chosen_hosts_config() -> None:
    section = HostConfig(name="clip4clip", checkpoint="ckpt", heads=8, fusion_layers=2, dim=999)
    assert host_settings(CLIP4ClipConfig, section) == CLIP4ClipConfig(checkpoint="ckpt", heads=8, fusion_layers=2)
    assert host_settings(SmallVLMConfig, HostConfig(dim=32, patch_grid=2)) == SmallVLMConfig(dim=32, patch_grid=2)


def test_the_built_in_host_is_built_from_its_own_config() -> None:
    from finsta_pl.hosts.registry import build_host

    host = build_host(HostConfig(dim=32, heads=2, video_layers=1, text_layers=1), {"vocab": ["[PAD]", "a", "b"]})
    assert host.name == "small_vlm" and host.config == SmallVLMConfig(dim=32, heads=2, video_layers=1, text_layers=1)
