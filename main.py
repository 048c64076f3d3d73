"""Convas entry point: ``convas [FILE]`` opens the designer; ``convas summary|train|export …`` run headless."""

from __future__ import annotations

import sys
from collections.abc import Sequence

CLI_COMMANDS = {"summary", "train", "export", "sweep"}
GLOBAL_FLAGS = {"--debug"}  # accepted before a command and by the window alike
# Register (or remove) Convas as the opener of .convas files for this user: engine.desktop_install.
DESKTOP_FLAGS = {"--install-desktop-entry", "--uninstall-desktop-entry"}


def run_as_python(argv: Sequence[str]) -> int | None:
    """In the packaged bundle (``sys.frozen``), ``sys.executable`` is Convas itself, not Python:
    run ``Convas -c CODE args…`` and ``Convas -m MODULE args…`` as Python would, because Convas
    starts its own helper processes that way (the export check, the GPU probe, the chief of a
    training run started by the window, the workers of ``--local-workers``). The code and module
    names are Convas's own constants. None when ``argv`` is not such a launch (or not frozen)."""
    if not getattr(sys, "frozen", False) or len(argv) < 2 or argv[0] not in ("-c", "-m"):
        return None
    if argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(argv[1], "<string>", "exec"), namespace)
        return 0
    import runpy

    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(sys, "frozen", False):
        # A child process that multiprocessing or joblib starts re-runs this executable.
        import multiprocessing

        multiprocessing.freeze_support()
        status = run_as_python(argv)
        if status is not None:
            return status
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
