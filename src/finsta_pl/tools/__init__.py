"""Command-line tools that are not Lightning runs (``finsta-pl sg-eval``, ``sg show``, ``profile``)."""
