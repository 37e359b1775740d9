"""The `foxagent` command line (thin: parsing and printing only)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="foxagent")
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
