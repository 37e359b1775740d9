"""``foxagent eval``: tool calling measured on real model output.

Two suites run through foxagent's own loop against any backend:

- ``bfcl``: the Berkeley Function Calling Leaderboard's single-turn categories, read from the
  pinned ``bfcl-eval`` wheel (`foxagent.eval._wheel`) and judged by BFCL's own AST checker
  (`foxagent.eval._checker`). One generation per case, scored as the server returned it (raw),
  as foxagent decided from it (first reply), and over the whole run.
- ``local``: everyday questions with the stock tools (``foxagent.eval._local_suite``).

The modules, in the order an evaluation uses them: ``_wheel`` (the data), ``_bfcl_data`` (the
cases), ``_bfcl_tools`` (names and schemas), ``_checker`` (the judge), ``_capture`` (one run,
watched), ``_bfcl_run`` / ``_local_run`` (one case), ``_jobs`` (concurrency, resume, progress),
``_report`` and ``_html`` (the outputs), ``_evaluate`` (all of it). The command line is
``foxagent.cli._eval``.
"""
