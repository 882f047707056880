"""TSG quality on human-written text: ``finsta-pl sg-eval --text-gold tests/data/tsg_gold/gold.jsonl``.

The gold file holds one hand-annotated sentence (or paragraph) per line in the styles of the datasets
(``style``: msrvtt, qa, activitynet, lsmdc), with objects, attributes, relations and adverbs under the
conventions of ``tests/data/tsg_gold/README.md``.  Each parser is scored with the multiset tuples of
:mod:`finsta_pl.tools.sg_match` (objects by name; attributes ``(object, attribute)``; relations ``(subject,
predicate, object)``; adverbs ``(predicate, adverb)``), overall and per style, side by side with the
SceneGraphParser package (``sng_parser``, spaCy rules; ``pip install 'finsta-pl[sgp]'``) when it is installed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from finsta_pl.errors import BadSampleError, DataNotFoundError
from finsta_pl.tools.sg_match import Counts, gold_text_tuples, score_tsg, tsg_tuples

METRICS = ("objects", "attributes", "relations", "adverbs")
SCENE_GRAPH_PARSER = "scenegraphparser"


def read_text_gold(path: Path) -> list[dict[str, Any]]:
    """The gold lines; a malformed line names the file and line number."""
    if not path.is_file():
        raise DataNotFoundError(f"text gold file not found: {path}")
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
            ids = {o["id"] for o in item["objects"]}
            for r in item["relations"]:
                if r["subject"] not in ids | {None} or r.get("object") not in ids | {None}:
                    raise ValueError(f"relation {r} refers to an unknown object id")
            if not str(item["text"]).strip() or "style" not in item:
                raise ValueError("empty text or no style")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}:{number}: malformed gold line ({type(exc).__name__}: {exc})") from None
        lines.append(item)
    return lines


def sgp_tuples(graph: dict[str, Any]) -> dict[str, Counter]:
    """SceneGraphParser's output as our tuples: noun-chunk heads (with compound modifiers, as the gold names
    compounds), ``amod``/``nummod`` modifiers as attributes, its relations; it has no adverbs or intransitives."""
    names = []
    for e in graph["entities"]:
        compounds = [m["lemma_span"].lower() for m in e["modifiers"] if m["dep"] == "compound"]
        names.append(" ".join([*compounds, e["lemma_head"].lower()]))
    attributes = Counter((names[i], m["span"].lower()) for i, e in enumerate(graph["entities"])
                         for m in e["modifiers"] if m["dep"] in {"amod", "nummod"})
    relations = Counter((names[r["subject"]], r["lemma_relation"].lower(), names[r["object"]])
                        for r in graph["relations"])
    return {"objects": Counter(names), "attributes": attributes, "relations": relations, "adverbs": Counter()}


def tuples_function(parser: str) -> Callable[[str], dict[str, Counter]]:
    """Text -> tuples for one of our parser backends or ``scenegraphparser``."""
    if parser == SCENE_GRAPH_PARSER:
        import sng_parser

        from finsta_pl.graphs.parsers import _SPACY_MODELS

        last: Exception | None = None
        for model in _SPACY_MODELS:
            try:
                sgp = sng_parser.Parser("spacy", model=model)
                return lambda text: sgp_tuples(sgp.parse(text))
            except ImportError as exc:
                last = exc
        raise RuntimeError(f"SceneGraphParser found no spaCy English model ({last})")
    from finsta_pl.graphs.parsers import CachedTSGBuilder, make_parser

    builder = CachedTSGBuilder(make_parser(parser))
    # The gold set does not annotate temporal words (its README), so the TSG's order adverbs are not scored.
    return lambda text: tsg_tuples(builder(text), order_adverbs=False)


def scene_graph_parser_available() -> bool:
    """Whether the optional ``sng_parser`` package imports."""
    try:
        import sng_parser  # noqa: F401
    except ImportError:
        return False
    return True


def evaluate_text_gold(path: Path, parsers: Sequence[str]) -> dict[str, Any]:
    """``{"sentences", "styles", "scores": {parser: {style or "all": {metric: {p, r, f1, tp, fp, fn}}}}}``."""
    gold = read_text_gold(path)
    scores: dict[str, Any] = {}
    for parser in parsers:
        parse = tuples_function(parser)
        totals: dict[str, dict[str, Counts]] = defaultdict(lambda: defaultdict(Counts))
        for item in gold:
            for metric, counts in score_tsg(parse(item["text"]), gold_text_tuples(item)).items():
                totals["all"][metric] += counts
                totals[item["style"]][metric] += counts
        scores[parser] = {group: {m: dict(zip(("p", "r", "f1"), c.prf()), tp=c.tp, fp=c.fp, fn=c.fn)
                                  for m, c in by_metric.items()} for group, by_metric in totals.items()}
    styles = sorted({item["style"] for item in gold})
    return {"gold": str(path), "sentences": len(gold), "styles": styles, "scores": scores}


def format_text_table(result: dict[str, Any]) -> str:
    """F1 per parser and metric over all sentences, then relation F1 per style."""
    parsers = list(result["scores"])
    width = max(12, *(len(p) + 2 for p in parsers))
    lines = [f"sg-eval --text-gold {result['gold']}: {result['sentences']} hand-annotated texts",
             f"{'F1 (all)':<14}" + "".join(f"{p:>{width}}" for p in parsers)]
    for metric in METRICS:
        lines.append(f"{metric:<14}" + "".join(f"{result['scores'][p]['all'][metric]['f1']:>{width}.3f}" for p in parsers))
    lines.append(f"{'relations F1':<14}" + "".join(f"{'':>{width}}" for _ in parsers))
    for style in result["styles"]:
        lines.append(f"{'  ' + style:<14}" + "".join(
            f"{result['scores'][p][style]['relations']['f1']:>{width}.3f}" for p in parsers))
    return "\n".join(lines)
