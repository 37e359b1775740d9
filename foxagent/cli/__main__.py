"""``python -m foxagent.cli``: the same command line as the ``foxagent`` script."""

from foxagent.cli._main import main

raise SystemExit(main())
