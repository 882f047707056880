"""The ``finsta-pl`` (and ``lightning``) console entry point: a tool subcommand, or a LightningCLI run."""

from __future__ import annotations

import sys
from typing import Sequence

from finsta_pl.cli.config_args import expand_config_args
from finsta_pl.cli.errors import exit_on_input_error
from finsta_pl.cli.subcommands import TOOLS, run_tool


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``finsta-pl`` and ``lightning`` (``argv``: ``sys.argv[1:]`` when ``None``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in TOOLS:
            raise SystemExit(run_tool(args[0], args[1:]))
        from finsta_pl.cli.lightning_cli import build_cli  # Lightning's import: only for a run

        if argv is None:  # console script: LightningCLI reads sys.argv (it warns when given both)
            sys.argv[1:] = expand_config_args(sys.argv[1:])
            build_cli(None)
        else:
            build_cli(expand_config_args(argv))
    except Exception as exc:
        exit_on_input_error(exc)
        raise
