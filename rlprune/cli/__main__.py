"""``python -m rlprune.cli``: the same as the ``rlprune`` command."""

from rlprune.cli import main

main()
