"""The ``rlprune`` command line: inspect, eval, latency, prune, sweep, zoo, robustness,
report, export.

Errors users can fix (bad paths, bad ids, out-of-range targets) print one line on stderr
and exit with status 2; ``--json`` prints one machine-readable object on stdout.
"""

from rlprune.cli import agent_commands, prune_commands, study_commands  # noqa: F401 (commands)
from rlprune.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
