"""Shared fixtures: a tiny synthetic world generated once per session, tiny batches.  Plain helpers (paths, the
CLI runners, recorded fits) are in ``tests/helpers``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import finsta_pl  # noqa: F401  first: it makes a mismatched torchvision importable before lightning pulls it in

from tests.helpers import REPO, TINY  # noqa: F401  (fixtures here; helpers for test modules in tests/helpers)


@pytest.fixture(autouse=True)
def _restore_determinism() -> Iterator[None]:
    """A Trainer built from a shipped config turns on ``torch.use_deterministic_algorithms`` for the whole
    process; each test gets back the mode it started with, so no test depends on which ran before it."""
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private ``FINSTA_PL_DATA`` so tests never touch the user's cache."""
    home = tmp_path_factory.mktemp("finsta_data")
    os.environ["FINSTA_PL_DATA"] = str(home)
    return home


@pytest.fixture(scope="session")
def tiny_world(data_home: Path) -> Path:
    """The tiny synthetic world of ``tests/configs/tiny.yaml`` (24/12/8 videos)."""
    from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

    return ensure_world(WorldConfig(num_train=24, num_val=12, num_test=8))


@pytest.fixture(scope="session")
def tiny_datamodule(tiny_world: Path):  # noqa: ANN201
    """A set-up VideoQADataModule on the tiny world, graphs on, no workers."""
    from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.synthetic import WorldConfig

    dm = VideoQADataModule(
        synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
        clip=ClipConfig(num_frames=4, frame_size=64),
        loader=LoaderConfig(batch_size=6, num_workers=0),
    )
    dm.setup("fit")
    return dm


@pytest.fixture(scope="session")
def tiny_batch(tiny_datamodule):  # noqa: ANN001, ANN201
    """The first training batch of the tiny world."""
    return next(iter(tiny_datamodule.train_dataloader()))
