"""Split lists: the files (one id per line, or a CSV with a ``video_id`` column) that name a split's videos
(MSR-VTT's 9k/7k/1k-A lists, a compositional split); :meth:`FinstaDataModule.regroup` applies them."""

from __future__ import annotations

from pathlib import Path

from finsta_pl.errors import DataNotFoundError


def read_video_list(path: Path) -> list[str]:
    """Video ids of a split list: one id per line (``train_list_jsfusion.txt``) or a CSV with a ``video_id``
    column (``MSRVTT_train.9k.csv``, ``MSRVTT_JSFUSION_test.csv``; comma, semicolon or tab, sniffed; each row's
    field count checked against the header)."""
    from finsta_pl.data_modules.annotation_io import Table, read_table

    if not path.is_file():
        raise DataNotFoundError(f"split list not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if lines and (lines[0] == "video_id" or any(d in lines[0] for d in ",;\t")):
        return list(dict.fromkeys(row["video_id"].strip() for _, row in read_table(path, Table(("video_id",), None))))
    return list(dict.fromkeys(lines))
