"""``python -m finsta_pl.cli``: the console script's entry point."""

from finsta_pl.cli.main import main

main()
