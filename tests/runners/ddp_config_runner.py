"""One rank of the shipped-config DDP check: fits each config given, one after the other, in this process.

``tests/cli/test_shipped_configs.py`` starts two of these (gloo, CPU) the way torchrun would (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``), so Lightning's DDP uses the processes it finds instead
of launching its own, and the process group is set up once for all configs (interpreter start-up and imports
dominate a tiny fit).  For each config it writes ``<out>/<stem>.rank<R>`` holding ``ok`` or the traceback.

    python tests/runners/ddp_config_runner.py OUT CONFIG [CONFIG ...] -- [overrides ...]
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    out, rest = Path(argv[0]), argv[1:]
    split = rest.index("--") if "--" in rest else len(rest)
    configs, overrides = rest[:split], rest[split + 1 :]
    rank = os.environ["RANK"]
    from finsta_pl.cli import build_cli, expand_config_args

    failed = 0
    for spec in configs:
        config, *extra = spec.split("::")  # per-config overrides after "::"
        stem = Path(config).stem
        (out / f"{stem}.rank{rank}").write_text("started\n")
        try:
            args = expand_config_args(["--config", config, *overrides, *extra])
            cli = build_cli(["fit", *args, f"--trainer.logger.init_args.save_dir={out / 'runs'}",
                             f"--trainer.default_root_dir={out / 'runs'}"])
            (out / f"{stem}.rank{rank}").write_text(f"ok world_size={cli.trainer.world_size}\n")
        except BaseException:  # noqa: BLE001 - reported per config; the other rank may then wait in a collective
            (out / f"{stem}.rank{rank}").write_text(traceback.format_exc())
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
