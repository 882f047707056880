"""The finsta-pl LightningCLI: every task and DataModule by ``class_path``, with the DataModule -> model link."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from finsta_pl.data_modules.base import FinstaDataModule
from finsta_pl.tasks.base import FinstaTask


class FinstaCLI(LightningCLI):
    """LightningCLI with the DataModule -> model link (``data.info()`` into ``model.init_args.data_info``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the DataModule's ``info()`` (vocabulary, answer list, ...) into the model's ``data_info``."""
        parser.link_arguments("data", "model.init_args.data_info", compute_fn=lambda dm: dm.info(),
                              apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """One switch for the host-only row: without Finsta there is nothing to build graphs for."""
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        finsta = (config.get("model") or {}).get("init_args", {}).get("finsta")
        data = (config.get("data") or {}).get("init_args")
        enabled = finsta.get("enabled", True) if finsta is not None else True
        if not enabled and data is not None and "build_graphs" in data:
            data["build_graphs"] = False

    def _parse_ckpt_path(self) -> None:
        # Lightning re-applies a checkpoint's hyperparameters to the config on --ckpt_path.  data_info is a
        # link target, recomputed from the DataModule, and jsonargparse refuses to have it set; drop it.
        sub = self.config.get("subcommand")
        path = self.config[sub].get("ckpt_path") if sub else None
        if not path or not Path(path).is_file():
            return
        hparams = torch.load(path, weights_only=True, map_location="cpu").get("hyper_parameters", {})
        for key in ("_instantiator", "data_info"):
            hparams.pop(key, None)
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        if hparams:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)


def build_cli(args: Sequence[str] | None, run: bool = True) -> Any:
    """The finsta-pl LightningCLI over ``args`` (``None``: ``sys.argv``); ``run=False`` only instantiates.
    ``args`` should have been through :func:`~finsta_pl.cli.config_args.expand_config_args`."""
    # LightningCLI warns when given args while sys.argv holds others (a tool's own, e.g. `profile ...`).
    saved, sys.argv[1:] = sys.argv[1:], ([] if args is not None else sys.argv[1:])
    try:
        return FinstaCLI(
            FinstaTask,
            FinstaDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            parser_kwargs={"parser_mode": "omegaconf"},
            save_config_kwargs={"overwrite": True},
            save_config_callback=SaveConfigCallback if run else None,
            args=list(args) if args is not None else None,
            run=run,
        )
    finally:
        sys.argv[1:] = saved
