"""Config files and arguments before LightningCLI parses them: ``extends`` chains, the run's name, nulls.

- A config file may start with ``extends: base.yaml`` or ``extends: [a.yaml, b.yaml]`` (paths relative to the
  file): the bases are read first, in the listed order, each with its own ``extends`` chain, then the file
  itself.  The task configs build on ``experiments/base/`` this way, the dataset configs on a task config.
- The run's logger name follows the first config file's name (``runs/<stem>/version_N``).
- ``--a.b.c=null`` on the command line becomes a config that sets a real null (a jsonargparse workaround).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from finsta_pl.errors import FinstaError


def _expand(path: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    """Config strings for ``path``: the chains of the bases its ``extends`` names (one, or a list composed in
    order), then ``path`` itself less its ``extends``; a file without one is passed on by name."""
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
