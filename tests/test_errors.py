"""The words an error is reported in: the line that says why (past TensorFlow's and Keras's
wrappers), whether the destination refused a file (by type, not by words), and the report of
an internal error with its traceback in a log file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine.errors import ConvasError, destination_refusal, first_line, last_line, refusal_reason
from engine.internal_error import LOG_NAME, MAX_LOG_BYTES, append_to_log, cli_log_path, describe_error, report

# Messages as TensorFlow 2.21 / Keras 3 print them (captured from real failures; frames shortened).
GRAPH_EXECUTION = (
    "Graph execution error:\n\n"
    "Detected at node compile_loss/sparse_categorical_crossentropy/SparseSoftmaxCrossEntropyWithLogits "
    "defined at (most recent call last):\n"
    '  File "/tmp/train.py", line 18, in <module>\n\n'
    '  File "/venv/lib/python3.11/site-packages/keras/src/utils/traceback_utils.py", line 117, in error_handler\n\n'
    '  File "/venv/lib/python3.11/site-packages/keras/src/backend/tensorflow/nn.py", line 1438, in '
    "sparse_categorical_crossentropy\n\n"
    "Received a label value of 7 which is outside the valid range of [0, 3).  Label values: 7 7 7 7 7 7 7 7\n"
    "\t [[{{node compile_loss/sparse_categorical_crossentropy/SparseSoftmaxCrossEntropyWithLogits}}]] "
    "[Op:__inference_multi_step_on_iterator_536]")

SCOPE_NAME = (
    "Exception encountered when calling Functional.call().\n\n"
    "\x1b[1m'my layer' is not a valid scope name. A scope name has to match the following pattern: "
    "^[A-Za-z0-9_.\\\\/>-]*$\x1b[0m\n\n"
    "Arguments received by Functional.call():\n"
    "  • inputs=tf.Tensor(shape=(None, 4), dtype=float32)\n"
    "  • training=None\n"
    "  • mask=None")

SCOPE_NAME_INFERRED = (
    "Exception encountered when calling Functional.call().\n\n"
    "Could not automatically infer the output shape / dtype of 'functional' (of type Functional). Either "
    "the `Functional.call()` method is incorrect, or you need to implement the "
    "`Functional.compute_output_spec() / compute_output_shape()` method. Error encountered:\n\n"
    "'my layer/kernel' is not a valid scope name. A scope name has to match the following pattern: "
    "^[A-Za-z0-9_.\\\\/>-]*$\n\n"
    "Arguments received by Functional.call():\n"
    "  • args=('<KerasTensor shape=(None, 4), dtype=float32, sparse=False, name=keras_tensor>',)")

IN_USER_CODE = (
    "in user code:\n\n"
    '    File "/tmp/model.py", line 35, in g  *\n'
    "        def g(x): return tf.reshape(x, (4,))\n\n"
    "    ValueError: Cannot reshape a tensor with 6 elements to shape [4] (4 elements) for '{{node Reshape}} = "
    "Reshape[T=DT_FLOAT, Tshape=DT_INT32](x, Reshape/shape)' with input shapes: [6], [1].\n")

EAGER_OP = ("{{function_node __wrapped__Reshape_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
            "Input to reshape is a tensor with 6 values, but the requested shape has 4 [Op:Reshape]")

SAVEV2_FULL = ("{{function_node __wrapped__SaveV2_dtypes_5_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
               "/data/sm/variables/variables_temp/part-00000-of-00001.data-00000-of-00001.tempstate684; "
               "No space left on device [Op:SaveV2]")

LAYER_CALL = (
    "Exception encountered when calling Sequential.call().\n\n"
    "\x1b[1mInput 0 with name 'None' of layer 'dense_1' is incompatible with the layer: expected axis -1 of "
    "input shape to have value 4, but received input with shape (2, 5)\x1b[0m\n\n"
    "Arguments received by Sequential.call():\n"
    "  • inputs=tf.Tensor(shape=(2, 5), dtype=float32)")

PYTHON_TRACEBACK = """Traceback (most recent call last):
  File "/tmp/build.py", line 3, in <module>
    model = build_model()
            ^^^^^^^^^^^^^
  File "/tmp/build.py", line 9, in build_model
    raise KeyError("conv2d")
KeyError: 'conv2d'"""


@pytest.mark.parametrize("text, expected", [
    (GRAPH_EXECUTION, "Received a label value of 7 which is outside the valid range of [0, 3).  "
                      "Label values: 7 7 7 7 7 7 7 7"),
    (SCOPE_NAME, "'my layer' is not a valid scope name. A scope name has to match the following "
                 "pattern: ^[A-Za-z0-9_.\\\\/>-]*$"),
    (SCOPE_NAME_INFERRED, "'my layer/kernel' is not a valid scope name. A scope name has to match the "
                          "following pattern: ^[A-Za-z0-9_.\\\\/>-]*$"),
    (IN_USER_CODE, "ValueError: Cannot reshape a tensor with 6 elements to shape [4] (4 elements) for "
                   "'{{node Reshape}} = Reshape[T=DT_FLOAT, Tshape=DT_INT32](x, Reshape/shape)' with "
                   "input shapes: [6], [1]."),
    (EAGER_OP, "Input to reshape is a tensor with 6 values, but the requested shape has 4"),
    (SAVEV2_FULL, "/data/sm/variables/variables_temp/part-00000-of-00001.data-00000-of-00001.tempstate684; "
                  "No space left on device"),
    (LAYER_CALL, "Input 0 with name 'None' of layer 'dense_1' is incompatible with the layer: expected axis "
                 "-1 of input shape to have value 4, but received input with shape (2, 5)"),
    (PYTHON_TRACEBACK, "KeyError: 'conv2d'"),
    ("Computed output size would be zero or negative. Received `inputs shape=(None, 2, 2, 3)`",
     "Computed output size would be zero or negative. Received `inputs shape=(None, 2, 2, 3)`"),
], ids=["graph-execution", "scope-name", "scope-name-inferred", "in-user-code", "eager-op", "savev2",
        "layer-call", "python-traceback", "one-line"])
def test_first_line_is_the_line_with_the_reason(text: str, expected: str) -> None:
    assert first_line(RuntimeError(text), limit=None) == expected
    assert first_line(text, limit=None) == expected


def test_an_error_with_only_a_wrapper_gives_its_cause() -> None:
    try:
        try:
            raise ValueError("the kernel is larger than the input")
        except ValueError as inner:
            raise RuntimeError("Graph execution error:") from inner
    except RuntimeError as outer:
        assert first_line(outer) == "the kernel is larger than the input"
    assert first_line(RuntimeError("Graph execution error:")) == "RuntimeError"


def test_last_line_skips_what_follows_the_error() -> None:
    assert last_line(PYTHON_TRACEBACK) == "KeyError: 'conv2d'"
    assert last_line(SCOPE_NAME).endswith("is not a valid scope name. A scope name has to match the "
                                          "following pattern: ^[A-Za-z0-9_.\\\\/>-]*$")
    assert last_line('[["conv2d", [null, 26, 26, 32], 320]]', limit=None) == '[["conv2d", [null, 26, 26, 32], 320]]'


# --- whether the destination refused a file ---------------------------------------------------

class ResourceExhaustedError(Exception):
    """Stands for ``tf.errors.ResourceExhaustedError`` (matched by name and module)."""


class PermissionDeniedError(Exception):
    pass


for _cls in (ResourceExhaustedError, PermissionDeniedError):
    _cls.__module__ = "tensorflow.python.framework.errors_impl"


def _chained(outer: BaseException, inner: BaseException, how: str) -> BaseException:
    if how == "cause":
        outer.__cause__ = inner
    else:
        outer.__context__ = inner
    return outer


@pytest.mark.parametrize("exc, refused", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), True),
    (OSError(errno.EROFS, os.strerror(errno.EROFS)), True),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES)), True),
    (OSError(getattr(errno, "EDQUOT", errno.ENOSPC), "Disk quota exceeded"), True),
    (ResourceExhaustedError(SAVEV2_FULL), True),
    (PermissionDeniedError("/data/sm; Read-only file system"), True),
    (_chained(ConvasError("could not save m.keras: No space left on device"),
              OSError(errno.ENOSPC, "No space left on device"), "cause"), True),
    (_chained(ValueError("Exception encountered"), ResourceExhaustedError(SAVEV2_FULL), "context"), True),
    # The words alone decide nothing: no errno, no TensorFlow class.
    (RuntimeError("No space left on device"), False),
    (ResourceExhaustedError.__mro__[1]("OOM when allocating tensor"), False),
    (OSError(errno.ENOENT, "No such file or directory"), False),
    (FileNotFoundError("gone"), False),
], ids=["enospc", "erofs", "eacces", "edquot", "tf-resource-exhausted", "tf-permission-denied",
        "wrapped-cause", "wrapped-context", "words-only", "plain-exception", "enoent", "no-errno"])
def test_destination_refusal_is_decided_by_type(exc: BaseException, refused: bool) -> None:
    assert (destination_refusal(exc) is not None) == refused


def test_a_cycle_in_the_chain_ends() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert destination_refusal(a) is None


def test_refusal_reason_in_the_systems_words() -> None:
    assert refusal_reason(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    assert refusal_reason(ResourceExhaustedError(SAVEV2_FULL)) == "No space left on device"
    assert refusal_reason(PermissionDeniedError("/data/sm; Read-only file system")) == "Read-only file system"


# --- internal errors ---------------------------------------------------------------------------

def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - to give it a traceback
        return caught


def test_the_report_keeps_the_traceback_in_the_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "logs" / LOG_NAME
    exc = _raised(ValueError(GRAPH_EXECUTION))
    line = report(exc, debug=False, log=log)
    assert line == ("internal error: ValueError: Received a label value of 7 which is outside the valid "
                    "range of [0, 3).  Label values: 7 7 7 7 7 7 7 7; please report it, with the traceback "
                    f"from {log}")
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "in _raised" in text
    assert capsys.readouterr().err == ""


def test_debug_prints_the_traceback_and_writes_no_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = report(_raised(KeyError("conv2d")), debug=True, log=tmp_path / LOG_NAME)
    assert line == "internal error: KeyError: 'conv2d'; please report it, with the traceback above"
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    assert not (tmp_path / LOG_NAME).exists()


def test_an_unwritable_log_is_said(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = report(_raised(ValueError("x")), debug=False, log=blocker / LOG_NAME)
    assert line.endswith("please report it, run again with --debug to see the traceback")


def test_a_full_log_starts_afresh(tmp_path: Path) -> None:
    log = tmp_path / LOG_NAME
    log.write_text("x" * (MAX_LOG_BYTES + 1))
    assert append_to_log(log, "Traceback\n") == log
    assert log.stat().st_size < 1000 and (tmp_path / f"{LOG_NAME}.1").stat().st_size > MAX_LOG_BYTES


def test_the_cli_log_is_in_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVAS_CACHE_DIR", str(tmp_path))
    assert cli_log_path() == tmp_path / LOG_NAME
    monkeypatch.delenv("CONVAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if os.name == "posix" and os.uname().sysname != "Darwin":
        assert cli_log_path() == tmp_path / "xdg" / "convas" / LOG_NAME


def test_describe_error_names_the_class_once() -> None:
    assert describe_error(ValueError("bad")) == "ValueError: bad"
    assert describe_error(ValueError(IN_USER_CODE)).startswith("ValueError: Cannot reshape")
    assert describe_error(KeyError()) == "KeyError"
