"""``python -m desim``: the same as the ``desim`` command."""

from desim.cli import main

main()
