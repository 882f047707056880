"""Where a DataModule keeps its training loader's position for checkpoints, so a resumed fit continues
mid-epoch with the same order and RNG states (see ``data_modules/sampler.py``)."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from finsta_pl.data_modules.sampler import ResumableDataLoader, ResumableSampler


class LoaderResumeState:
    """Mixed into :class:`~finsta_pl.data_modules.base.FinstaDataModule`: makes the resumable training loader
    and saves / restores its state with the DataModule's own."""

    def resumable_train_loader(self, dataset: Dataset, seed: int, drop_last: bool, **common: Any) -> ResumableDataLoader:
        """The training loader: seeded by (seed, epoch), sharded per rank, given any state a checkpoint left."""
        loader = ResumableDataLoader(dataset, sampler=ResumableSampler(dataset, seed), drop_last=drop_last, **common)
        if getattr(self, "_train_loader_state", None):
            loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None
        self._train_loader = loader
        return loader

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position and RNG states, saved in checkpoints with the DataModule.

        Lightning saves the loader's own state too, but restores it only when the loop creates the loader
        after the checkpoint is loaded; ``configure_optimizers`` asking ``estimated_stepping_batches`` creates
        it before, and that state is then dropped.  The DataModule is restored earlier than both."""
        loader = getattr(self, "_train_loader", None)
        return {"train_loader": loader.state_dict()} if loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the training loader's state for the next training loader this module makes."""
        self._train_loader_state = state_dict.get("train_loader")
