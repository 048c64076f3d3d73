"""Convas entry point: ``convas [FILE]`` opens the designer; ``convas summary|train|export …`` run headless."""

from __future__ import annotations

import sys
from collections.abc import Sequence

CLI_COMMANDS = {"summary", "train", "export", "sweep"}
GLOBAL_FLAGS = {"--debug"}  # accepted before a command and by the window alike
# Register (or remove) Convas as the opener of .convas files for this user: engine.desktop_install.
DESKTOP_FLAGS = {"--install-desktop-entry", "--uninstall-desktop-entry"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if a not in GLOBAL_FLAGS), None)
    headless = first in CLI_COMMANDS or first in DESKTOP_FLAGS or first in ("-h", "--help", "--version")
    if headless:
        from engine.console import prepare_streams

        prepare_streams()  # a Windows console's code page cannot print every character
    if first in DESKTOP_FLAGS:
        from engine.desktop_install import command

        return command(argv)
    if headless:
        from engine.cli import EXIT_INTERRUPTED, main as cli_main

        status = cli_main(argv)
        if status == EXIT_INTERRUPTED:
            # The duplicate of the SIGINT that stopped training (uv forwards one, a process
            # group gets one) may arrive while Python shuts down, when its handlers are gone:
            # the process would die of it, and report -2 instead of 130.
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return status
    try:
        from gui.app import run
    except ImportError as exc:  # Qt's libraries missing (a server without a display stack)
        from engine.errors import first_line

        print(f"convas: cannot start the window: {first_line(exc)}; the commands `convas summary`, "
              "`train` and `export` work without it", file=sys.stderr)
        return 1
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
