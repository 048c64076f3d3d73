"""The command line: ``convas summary``, ``convas --version``.

Every failure is a message on stderr and an exit status, never a traceback:
0 valid design, 1 invalid design (each problem as ``NAME: message``), 2 unreadable or
unsupported file or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import __version__
from .analysis import analyse
from .errors import ConvasError
from .summary import summary_dict, summary_text

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with status 2 and a one-line reason (its default, made explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNREADABLE, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convas", description="Design, analyse, train and export Keras CNNs.")
    parser.add_argument("--version", action="version", version=f"convas {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    s = sub.add_parser("summary", help="print the layer table of a .convas, .keras or Keras JSON file")
    s.add_argument("path", help="a .convas, .keras or Keras JSON file")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--batch-size", type=positive_int, default=1, help="batch size for activation memory")
    return parser


def _stdout_unicode() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "┏━│".encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def cmd_summary(args: argparse.Namespace) -> int:
    from .files import load_design

    try:
        design = load_design(args.path)
    except ConvasError as exc:
        print(f"convas: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"convas: cannot read {args.path}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    analysis = analyse(design, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(summary_dict(design, analysis), indent=2))
    else:
        print(summary_text(design, analysis, unicode=_stdout_unicode()))
    for problem in analysis.problems:
        who = problem.node or design.name
        prefix = "" if problem.severity == "error" else "warning: "
        print(f"{who}: {prefix}{problem.message}", file=sys.stderr)
    return EXIT_OK if analysis.valid else EXIT_INVALID


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "summary":
        return cmd_summary(args)
    parser.print_help()
    return EXIT_OK
