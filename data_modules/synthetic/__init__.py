"""Embedded synthetic video-language world: coloured shapes written in the official dataset formats."""

from finsta_pl.data_modules.synthetic.world import (
    ACTIONS,
    ANSWER_SETS,
    COLORS,
    DIRECTIONS,
    QUESTION_TEMPLATES,
    SHAPES,
    SPEEDS,
    WORLD_VERSION,
    WorldConfig,
    default_cache_dir,
    ensure_world,
    generate_world,
)

__all__ = ["ACTIONS", "ANSWER_SETS", "COLORS", "DIRECTIONS", "QUESTION_TEMPLATES", "SHAPES", "SPEEDS",
           "WORLD_VERSION", "WorldConfig", "default_cache_dir", "ensure_world", "generate_world"]
