"""``finsta-pl sg show VIDEO "TEXT" --out sg.png``: draw the scene graphs finsta-pl builds for one clip.

The clip is decoded and its graphs built exactly as a training sample's (``decode_clip`` + ``GraphBuilder``),
so the picture shows what the model is given: the caption's TSG, the keyframes' DSG tracks and predicates,
and the cross-modal links of the HSG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from finsta_pl.errors import FinstaError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finsta-pl sg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="draw the TSG, DSG and HSG of one video and one text as a PNG")
    show.add_argument("video", type=Path, help="video file (anything decord reads)")
    show.add_argument("text", help="caption or question")
    show.add_argument("--out", type=Path, default=Path("sg.png"), help="PNG to write (default: sg.png)")
    show.add_argument("--num-frames", type=int, default=6, help="keyframes sampled from the video")
    show.add_argument("--parser", default="rule", choices=("rule", "spacy", "stanza", "auto"), help="TSG parser")
    show.add_argument("--detector", default="motion", choices=("motion", "grid"), help="DSG detector")
    show.add_argument("--size", type=int, default=128, help="square side the frames are resized to")
    return parser


def show(video: Path, text: str, out: Path, num_frames: int = 6, parser: str = "rule", detector: str = "motion",
         size: int = 128) -> str:
    """Build and draw the graphs of ``video`` + ``text`` into ``out``; returns a one-line summary."""
    from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig
    from finsta_pl.data_modules.video import decode_clip
    from finsta_pl.graphs.draw import draw_scene_graphs, split_hsg
    from finsta_pl.graphs.ud import tokenize_with_offsets

    if num_frames < 1 or size < 16:
        raise FinstaError(f"--num-frames must be >= 1 and --size >= 16 (got {num_frames}, {size})")
    frames, indices = decode_clip(video, num_frames, size)
    try:
        builder = GraphBuilder(GraphConfig(parser=parser, detector=detector))
    except (ImportError, OSError) as exc:  # a parser backend that is not installed is a user error
        raise FinstaError(f"parser {parser!r} is not usable here: {exc}") from exc
    # Token offsets only map TSG spans to the host's tokens, which a picture does not need; words will do.
    offsets = [(start, end) for _, start, end in tokenize_with_offsets(text)]
    _, (graphs,) = builder(frames, indices, [(text, offsets)])
    draw_scene_graphs(frames, graphs.hsg, text, out, frame_indices=indices)
    tsg, dsg, links = split_hsg(graphs.hsg)
    tracks = len({t for t in dsg.node_track.tolist() if t >= 0})
    return (f"TSG {tsg.num_nodes} nodes / {tsg.edge_type.numel()} edges, DSG {dsg.num_nodes} nodes / "
            f"{dsg.edge_type.numel()} edges, {tracks} tracks, {len(links)} links")


def main(argv: list[str]) -> int:
    """Entry point of ``finsta-pl sg``; input errors propagate as :class:`FinstaError` (exit code 2)."""
    args = _parser().parse_args(argv)
    summary = show(args.video, args.text, args.out, args.num_frames, args.parser, args.detector, args.size)
    print(args.out)
    print(summary)
    return 0
