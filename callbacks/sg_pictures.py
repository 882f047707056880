"""Pictures of a few validation samples' scene graphs (TSG, DSG tracks, HSG links), written during a fit."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class SceneGraphPictures(L.Callback):
    """Draws ``num_samples`` fixed validation samples every ``every_n_epochs`` validation epochs.

    PNGs go to ``<log_dir>/sg_pictures/epoch{E}_sample{K}.png``; a TensorBoard logger also gets them as
    images ``sg_pictures/sample{K}``.  Samples are spread evenly over the validation set and stay the same
    across epochs, so pictures of different epochs compare.  The graphs come from the dataset itself (the
    same ``GraphBuilder`` output the model trains on), read in the main process.
    """

    def __init__(self, num_samples: int = 4, every_n_epochs: int = 1) -> None:
        if num_samples < 1 or every_n_epochs < 1:
            raise ValueError(f"SceneGraphPictures: num_samples and every_n_epochs must be >= 1, "
                             f"got {num_samples}, {every_n_epochs}")
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self._log_dir: str | None = None
        self._warned = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Note the log folder now: ``trainer.log_dir`` broadcasts under DDP, so every rank must ask it."""
        self._log_dir = trainer.log_dir

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Draw and log the pictures (rank zero; not during the sanity check)."""
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self._draw(trainer)

    @rank_zero_only
    def _draw(self, trainer: L.Trainer) -> None:
        from finsta_pl.graphs.draw import draw_scene_graphs

        dataset = getattr(getattr(trainer, "datamodule", None), "datasets", {}).get("val")
        if dataset is None or not len(dataset):
            return self._warn("no validation dataset on trainer.datamodule.datasets['val']")
        folder = Path(self._log_dir or trainer.default_root_dir) / "sg_pictures"
        picks = sorted(set(np.linspace(0, len(dataset) - 1, self.num_samples).round().astype(int).tolist()))
        for k, index in enumerate(picks):
            item = dataset[index]
            if item is None:  # a bad sample that the dataset skips
                continue
            if item.dsg is None:
                return self._warn("the validation dataset builds no scene graphs (build_graphs=False)")
            if not item.texts:
                return self._warn("the validation samples have no text (no HSG to draw)")
            image = draw_scene_graphs(item.frames, item.texts[0].graphs.hsg, dataset.specs[index].texts[0].text,
                                      folder / f"epoch{trainer.current_epoch}_sample{k}.png")
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_image(f"sg_pictures/sample{k}", image, trainer.current_epoch,
                                                dataformats="HWC")

    def _warn(self, why: str) -> None:
        if not self._warned:
            warnings.warn(f"SceneGraphPictures: nothing drawn, {why}", stacklevel=2)
            self._warned = True
