"""Opening a sweep's Optuna storage so that many processes can share it, and keeping Optuna quiet.

A sweep's trials live in an Optuna ``RDBStorage``: a SQLite file beside the project by default,
or any database URL several machines reach (PostgreSQL, MySQL). Two things make a shared file
work:

- SQLite lets one process write at a time. A writer that finds the file locked waits (the
  driver's ``timeout``) and, when the wait runs out anyway, :func:`open_storage`'s storage tries
  the whole write again a little later instead of failing the trial ("database is locked").
  Every storage write is one transaction that was rolled back, so trying it again is safe.
- A process that dies leaves its trial RUNNING. Each process records a heartbeat for the trial
  it runs; a trial whose heartbeat is older than the grace period is failed by the next process
  that looks (:func:`fail_stale`), and :mod:`engine.sweep` reads it as "the process running it
  stopped".

Errors of the database or its driver become one :class:`engine.errors.ConvasError` sentence
(:func:`storage_error`): no SQLAlchemy traceback reaches a user.

Nothing here imports Optuna or SQLAlchemy at module import time.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import unquote

from .errors import ConvasError, first_line

HEARTBEAT_S = 20   # how often a running trial says it is alive
GRACE_S = 60       # how long after its last heartbeat a trial counts as abandoned
SQLITE_WAIT_S = 30.0  # how long SQLite waits for another process's write before giving up once
LOCKED_RETRIES = 20   # then the write is tried again this many times, with growing pauses

_quiet = False


def quiet_optuna() -> None:
    """Keep Optuna's log lines and warnings (experimental features, "Trial 3 failed...") off
    stderr: Convas reports every trial itself. Cheap to call again (a test framework may have
    reset the warning filters since)."""
    global _quiet
    import optuna
    from optuna.exceptions import ExperimentalWarning

    if not _quiet:
        optuna.logging.set_verbosity(logging.CRITICAL + 10)
        optuna.logging.disable_default_handler()
        logging.getLogger("alembic").setLevel(logging.ERROR)
        _quiet = True
    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    warnings.filterwarnings("ignore", module=r"optuna(\..*)?$")
    # On Python 3.12+ Optuna attributes its warnings to the caller; this one is about ask/tell with
    # heartbeats, which engine.sweep runs itself (it starts the heartbeat thread per trial).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is SQLite saying another process holds the lock."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        text = str(seen).lower()
        if "database is locked" in text or "database table is locked" in text or "database is busy" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retrying(method: Callable[..., Any], retries: int) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(retries + 1):
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if attempt == retries or not _is_locked(exc):
                    raise
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    return call


# The storage methods that read or write the database (BaseStorage and BaseHeartbeat's).
_DATABASE_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies", "create_new_trial",
    "set_trial_param", "get_trial_id_from_study_id_trial_number", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr", "get_trial",
    "get_all_trials", "get_n_trials", "record_heartbeat", "_get_stale_trial_ids",
    "get_best_trial", "check_trial_is_updatable",
)


@functools.cache
def _storage_class() -> type:
    """An ``RDBStorage`` whose database calls try again while SQLite is locked (made on first use,
    so that importing this module does not import Optuna)."""
    from optuna.storages import RDBStorage

    namespace: dict[str, Any] = {"__doc__": "RDBStorage that waits out SQLite's locks."}
    for name in _DATABASE_METHODS:
        method = getattr(RDBStorage, name, None)
        if method is not None:
            namespace[name] = _retrying(method, LOCKED_RETRIES)
    namespace["set_trial_user_attrs"] = _retrying(_set_trial_user_attrs, LOCKED_RETRIES)
    return type("LockTolerantRDBStorage", (RDBStorage,), namespace)


def _set_trial_user_attrs(storage: Any, trial_id: int, attrs: dict[str, Any]) -> None:
    """Set several user attributes of a trial in one transaction (Optuna commits each alone:
    a rejected trial's eight attributes took eight commits)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        for key, value in attrs.items():
            storage._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)


def set_user_attrs(study: Any, trial: Any, attrs: dict[str, Any]) -> None:
    """Set ``attrs`` on ``trial`` of ``study``: in one transaction on a storage opened by
    :func:`open_storage`, one by one on any other."""
    backend = getattr(study._storage, "_backend", study._storage)
    batch = getattr(backend, "set_trial_user_attrs", None)
    if batch is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
    else:
        batch(trial._trial_id, attrs)


def open_storage(url: str, *, heartbeat: bool = True) -> Any:
    """The Optuna storage at ``url``, with heartbeats (when ``heartbeat``) so that a trial of a
    killed process can be failed later. :class:`ConvasError` with a sentence when the URL is
    not a database URL, its driver is missing or the database cannot be reached or created."""
    quiet_optuna()
    kwargs: dict[str, Any] = {}
    path = sqlite_path(url)
    if path is not None:
        kwargs["creator"] = functools.partial(_sqlite_connection, path)
    elif url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_WAIT_S}
    beat = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S} if heartbeat else {}
    for attempt in range(5):
        try:
            return _retrying(_storage_class(), LOCKED_RETRIES)(url, engine_kwargs=kwargs, **beat)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy, drivers and Optuna raise many kinds
            # Processes that open a new database at the same moment race to create its tables
            # and stamp its schema version; the loser finds them made when it tries again.
            if attempt < 4 and _lost_creation_race(exc):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ConvasError(storage_error(url, exc)) from None
    raise AssertionError("unreachable")


def _lost_creation_race(exc: BaseException) -> bool:
    text = f"{exc} {exc.__cause__ or exc.__context__ or ''}".lower()
    return "unique constraint failed" in text or "already exists" in text or "duplicate" in text


def sqlite_path(url: str) -> str | None:
    """The file a ``sqlite:///`` URL names (None: another database, or SQLite in memory), read
    as SQLAlchemy reads it: up to a ``?`` (the query), percent-escapes decoded."""
    if not url.startswith("sqlite:///"):
        return None
    path = unquote(url.removeprefix("sqlite:///").split("?", 1)[0])
    return path if path and path != ":memory:" else None


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The ``sqlite:///`` URL of the file ``path`` (absolute, so that every process opens the
    same file), written so that :func:`sqlite_path` and SQLAlchemy read ``path`` back: forward
    slashes (``sqlite:///C:/Users/…`` on Windows), ``%`` and ``?`` escaped (a folder named
    ``100% ?`` is not a query); spaces and other letters stay readable."""
    text = path.as_posix() if isinstance(path, PurePath) else Path(path).as_posix()
    return "sqlite:///" + text.replace("%", "%25").replace("?", "%3F")


def _sqlite_connection(path: str) -> Any:
    """A connection to a sweep's SQLite file: it waits for other processes' writes, and uses
    write-ahead logging (readers do not block the writer) with commits that do not wait for
    the disk on every write, which makes recording a rejected trial take about a millisecond
    instead of tens. (A power cut may lose the last trials; the file stays consistent.)"""
    import sqlite3

    connection = sqlite3.connect(path, timeout=SQLITE_WAIT_S, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def storage_error(url: str, exc: BaseException) -> str:
    """One sentence for a failure to use the storage at ``url`` (the password left out)."""
    shown = without_password(url)
    name = type(exc).__name__
    text = first_line(exc) if str(exc) else name
    if isinstance(exc, ImportError) or "No module named" in text:
        module = getattr(exc, "name", None) or _missing_module(exc)
        return (f"the sweep storage {shown} needs a database driver that is not installed"
                f"{f' ({module})' if module else ''}; install it, or use a sqlite:/// URL")
    if name == "ArgumentError" or "Could not parse" in text or "Can't load plugin" in text:
        return (f"the sweep storage {shown!r} is not a database URL Convas can use; write it like "
                f"sqlite:///path/to/sweep.db or postgresql://user@host/database")
    if url.startswith("sqlite") and ("unable to open database file" in text or "readonly" in text):
        return (f"cannot open the sweep storage {shown}: check that its folder exists and can be "
                f"written")
    cause = exc.__cause__ or exc.__context__
    detail = first_line(cause) if cause is not None and str(cause) else text
    # SQLAlchemy's "(psycopg2.OperationalError) could not connect...": the driver's words.
    detail = re.sub(r"^\([\w.]+\)\s*", "", detail.split("\n")[0])
    return f"cannot use the sweep storage {shown}: {detail}"


def _missing_module(exc: BaseException) -> str | None:
    cause = exc.__cause__ or exc.__context__
    return getattr(cause, "name", None) if isinstance(cause, ImportError) else None


def without_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    if ":" in credentials:
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def fail_stale(study: Any) -> None:
    """Fail the trials whose process stopped sending heartbeats (see the module docstring)."""
    from optuna.storages import fail_stale_trials

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fail_stale_trials(study)
