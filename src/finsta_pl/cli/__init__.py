"""``finsta-pl`` and ``lightning``: LightningCLI (fit / validate / test / predict) for every finsta-pl task.

- Configs use ``class_path``/``init_args`` and ``parser_mode: omegaconf`` (``${...}`` interpolation, ``oc.env``).
- ``--config`` files compose in order; a file may start with ``extends:`` (one file or a list, relative to
  itself) to be read on top of those, so a task config holds only what differs from ``experiments/base/`` and
  a dataset config only what differs from its task config.
- The DataModule's ``info()`` (vocabulary, answer list, ...) is linked into ``model.init_args.data_info``.
- Input errors (missing data, malformed annotations, unknown names) end with one message and exit code 2.
- Tools that are not Lightning runs are subcommands too, each ``main(argv) -> int``.

One job per module: ``config_args`` (``extends`` chains, run naming, nulls), ``lightning_cli`` (the
LightningCLI subclass, ``build_cli``), ``subcommands`` (the tool table, ``finsta-pl data`` among them),
``errors`` (input error -> one line, exit 2), ``main`` (the entry point).
"""

from __future__ import annotations

from typing import Any

from finsta_pl.cli.config_args import expand_config_args
from finsta_pl.cli.main import main
from finsta_pl.cli.subcommands import TOOLS

__all__ = ["TOOLS", "build_cli", "expand_config_args", "main"]


def __getattr__(name: str) -> Any:
    # build_cli imports Lightning (seconds): loaded when first asked for, so tools and expand_config_args don't wait.
    if name == "build_cli":
        from finsta_pl.cli.lightning_cli import build_cli

        return build_cli
    raise AttributeError(f"module 'finsta_pl.cli' has no attribute {name!r}")
