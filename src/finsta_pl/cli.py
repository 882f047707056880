"""``finsta-pl`` and ``lightning``: LightningCLI (fit / validate / test / predict) for every finsta-pl task.

- Configs use ``class_path``/``init_args`` and ``parser_mode: omegaconf`` (``${...}`` interpolation, ``oc.env``).
- ``--config`` files compose in order; a file may start with ``extends: other.yaml`` (relative to itself) to
  be read on top of that file, so a dataset config overrides only what differs from its task config.
- The DataModule's ``info()`` (vocabulary, answer list, ...) is linked into ``model.init_args.data_info``.
- Input errors (missing data, malformed annotations, unknown names) end with one message and exit code 2.
- Tools that are not Lightning runs are subcommands too (:data:`TOOLS`), each ``main(argv) -> int``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from finsta_pl.errors import FinstaError

#: ``finsta-pl <name> ...`` subcommands outside LightningCLI: module path of a ``main(argv) -> int``.
TOOLS: dict[str, str] = {
    "sg-eval": "finsta_pl.tools.sg_eval",
    "sg": "finsta_pl.tools.sg_show",
    "profile": "finsta_pl.tools.profile",
    "tiny-clip": "finsta_pl.tools.tiny_clip",
    "data": "finsta_pl.tools.data_check",
    "detect": "finsta_pl.tools.detect",
    "reproduce": "finsta_pl.tools.reproduce",
}


def _expand(path: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    """Config strings for ``path``: its ``extends`` chain first (base before derived)."""
    path = path.resolve()
    if path in seen:
        raise FinstaError(f"{path}: 'extends' cycle through {' -> '.join(map(str, seen))}")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise FinstaError(f"{path}: not valid YAML ({exc})") from None
    base = content.pop("extends", None) if isinstance(content, dict) else None
    if base is None:
        return [str(path)]
    bases = [base] if isinstance(base, str) else list(base)
    out = [c for b in bases for c in _expand(path.parent / b, (*seen, path))]
    return out + [yaml.safe_dump(content, sort_keys=False)]


def _null_override(arg: str) -> str | None:
    """``--a.b.c=null`` as the config ``{a: {b: {c: null}}}``.  jsonargparse (4.53) turns a null given on the
    command line for a nested field of a class's init_args into the *string* ``"None"``; a config applies it
    at the same position in the argument order and sets a real null."""
    if not arg.startswith("--") or "=" not in arg:
        return None
    key, value = arg[2:].split("=", 1)
    if value not in {"null", "None"} or "." not in key:
        return None
    nested: Any = None
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return yaml.safe_dump(nested)


def _is_config_file(value: str) -> bool:
    """Whether ``--config`` got a file name, not inline YAML.  Lightning's DDP launcher starts each further rank
    with this process's ``sys.argv``, which already holds the expanded chains as inline YAML; such a value
    can be longer than a file name may be (``Path.is_file`` then raises ``OSError: File name too long``)."""
    if "\n" in value:
        return False
    try:
        return Path(value).is_file()
    except OSError:
        return False


def _logger_class(chain: list[str]) -> str | None:
    """The ``trainer.logger.class_path`` a config chain ends up with (``None`` when it sets no logger class)."""
    found = None
    for cfg in chain:
        content = yaml.safe_load(Path(cfg).read_text() if _is_config_file(cfg) else cfg) or {}
        logger = (content.get("trainer") or {}).get("logger") if isinstance(content, dict) else None
        if isinstance(logger, dict) and "class_path" in logger:
            found = logger["class_path"]
        elif logger is not None and not isinstance(logger, dict):
            found = None  # logger: false / true
    return found


def _run_name(path: Path, chain: list[str]) -> list[str]:
    """The run's logger name follows the experiment file's name (``runs/<stem>/version_N``), so a config that
    extends another needs no logger block of its own; a later ``--config`` or flag may still set it."""
    if _logger_class(chain) is None:
        return []
    return ["--config", _RUN_NAME_MARK + yaml.safe_dump({"trainer": {"logger": {"init_args": {"name": path.stem}}}})]


#: first line of the injected run-name config: an argv that has one is already expanded (a DDP rank's re-run).
_RUN_NAME_MARK = "# finsta-pl: run named after its config file\n"


def expand_config_args(argv: Sequence[str]) -> list[str]:
    """Replace each ``--config FILE`` whose file ``extends`` another with the chain of configs it stands for,
    name the run after the first config file (see :func:`_run_name`), and turn each nested ``--key=null``
    into a config that sets it (see :func:`_null_override`)."""
    out: list[str] = []
    named = any(a.startswith(_RUN_NAME_MARK) for a in argv)
    it = iter(argv)
    for arg in it:
        null = _null_override(arg)
        if null is not None:
            out += ["--config", null]
            continue
        value = None
        if arg == "--config":
            value = next(it, None)
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        if value is None or not _is_config_file(value):
            out += [arg] if value is None else ["--config", value]
            continue
        chain = _expand(Path(value))
        for cfg in chain:
            out += ["--config", cfg]
        if not named:
            out += _run_name(Path(value), chain)
            named = True
    return out


def build_cli(args: Sequence[str] | None, run: bool = True) -> Any:
    """The finsta-pl LightningCLI over ``args`` (``None``: ``sys.argv``); ``run=False`` only instantiates."""
    from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

    from finsta_pl.data_modules.base import FinstaDataModule
    from finsta_pl.tasks.base import FinstaTask

    class FinstaCLI(LightningCLI):
        """LightningCLI with the DataModule -> model link."""

        def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
            parser.link_arguments("data", "model.init_args.data_info", compute_fn=lambda dm: dm.info(),
                                  apply_on="instantiate")

        def before_instantiate_classes(self) -> None:
            # One switch for the host-only row: without Finsta there is nothing to build graphs for.
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
            import torch

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


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``finsta-pl`` and ``lightning``."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in TOOLS:
            import importlib

            raise SystemExit(importlib.import_module(TOOLS[args[0]]).main(args[1:]))
        if argv is None:  # console script: LightningCLI reads sys.argv (it warns when given both)
            sys.argv[1:] = expand_config_args(sys.argv[1:])
            build_cli(None)
        else:
            build_cli(expand_config_args(argv))
    except Exception as exc:
        error = _finsta_error(exc)
        if error is None:
            raise
        message = str(error).strip()
        if "Traceback" in message:  # a DataLoader worker's re-raise prefixes the worker's traceback
            message = message.splitlines()[-1]
        print(f"finsta-pl: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def _finsta_error(exc: BaseException | None) -> FinstaError | None:
    """The :class:`FinstaError` behind ``exc``: jsonargparse wraps errors raised while instantiating classes
    in a ``ValueError``, DataLoader workers re-raise them with their own class."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, FinstaError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    main()
