"""Convas entry point: ``convas`` opens the designer; ``convas summary …`` and friends run headless."""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0] in {"summary"} or argv[0].startswith("-")):
        from engine.cli import main as cli_main

        return cli_main(argv)
    return open_designer(argv)


def open_designer(argv: list[str]) -> int:
    """Until the designer window lands (issue 3), show the seed CNN's summary and say so."""
    from engine.analysis import analyse
    from engine.examples import seed_design
    from engine.files import load_design
    from engine.summary import summary_text
    from engine.errors import ConvasError

    try:
        design = load_design(argv[0]) if argv else seed_design()
    except ConvasError as exc:
        print(f"convas: {exc}", file=sys.stderr)
        return 2
    print(summary_text(design, analyse(design)))
    print("\nThe designer window is not built yet (it comes with the next issue); "
          "this is the engine's analysis of the design it will open.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
