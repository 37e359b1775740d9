"""``python -m foxagent``: the same command line as the ``foxagent`` script."""

from foxagent.cli import main

raise SystemExit(main())
