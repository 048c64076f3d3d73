"""Convas entry point: ``convas [FILE]`` opens the designer; ``convas summary|train|export …`` run headless."""

from __future__ import annotations

import sys
from collections.abc import Sequence

CLI_COMMANDS = {"summary", "train", "export"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in CLI_COMMANDS or argv[0] in ("-h", "--help", "--version")):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from gui.app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
