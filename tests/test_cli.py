"""`convas summary` end to end: text, JSON, exit codes and messages for bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_text_of_seed_cnn(capsys):
    code, out, err = run(capsys, "summary", str(SEED))
    assert code == 0 and err == ""
    assert 'Model: "seed_cnn"' in out
    assert "conv2d (Conv2D)" in out and "(None, 26, 26, 32)" in out
    assert "Total params: 34,826 (136.04 KB)" in out
    assert "MACs per sample: 2.44 M" in out


def test_summary_json_contract(capsys):
    code, out, _ = run(capsys, "summary", str(SEED), "--json", "--batch-size", "32")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"model", "layers", "total_params", "trainable_params", "non_trainable_params",
                        "weight_bytes", "macs", "activation_bytes", "batch_size"}
    assert doc["model"] == "seed_cnn" and doc["batch_size"] == 32
    assert doc["total_params"] == 34826 and doc["trainable_params"] == 34826
    assert doc["non_trainable_params"] == 0 and doc["weight_bytes"] == 4 * 34826
    first_conv = doc["layers"][1]
    assert first_conv == {"name": "conv2d", "type": "Conv2D", "inputs": ["input_layer"],
                          "output_shape": [None, 26, 26, 32], "params": 320, "trainable_params": 320,
                          "macs": 26 * 26 * 32 * 9, "activation_bytes": 4 * 26 * 26 * 32,
                          "receptive_field": [3, 3], "effective_stride": [1, 1]}
    assert doc["layers"][-1]["receptive_field"] is None
    assert doc["activation_bytes"] == 32 * sum(layer["activation_bytes"] for layer in doc["layers"])


def test_json_lists_every_shape_of_a_shared_layer(tmp_path, capsys):
    from engine.design import Design, TensorRef
    from engine.project_file import save_project
    d = Design(name="siamese")
    d.add("InputLayer", "a", {"shape": (8,)})
    d.add("InputLayer", "b", {"shape": (8,)})
    d.add("Dense", "shared", {"units": 4}, inputs=["a"])
    d.connect("b", "shared", call=1)
    d.add("Concatenate", "cat", inputs=[TensorRef("shared", 0), TensorRef("shared", 1)])
    path = tmp_path / "siamese.convas"
    save_project(path, d)
    code, out, _ = run(capsys, "summary", str(path), "--json")
    layer = {x["name"]: x for x in json.loads(out)["layers"]}["shared"]
    assert code == 0 and layer["output_shape"] == [[None, 4], [None, 4]] and layer["params"] == 36


def test_invalid_design_exits_1_with_each_problem_on_stderr(tmp_path, capsys):
    from engine.examples import seed_design
    from engine.project_file import save_project
    d = seed_design()
    d.set_arg("conv2d_1", "kernel_size", 15)
    path = tmp_path / "bad.convas"
    save_project(path, d)
    code, out, err = run(capsys, "summary", str(path))
    assert code == 1
    assert err.strip() == ("conv2d_1: 15×15 kernel is larger than its 13×13 input; "
                           "use padding='same' or a kernel ≤ 13")
    assert "invalid" in out


def _lambda_model() -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "input_layer"}},
        {"module": "keras.layers", "class_name": "Lambda",
         "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
             "code": "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAfABkARQAUwApAk7pAgAAAKkAKQHaAXhyAgAAAHICAAAA"}}}},
    ]}}


@pytest.mark.parametrize("name, content, needle", [
    ("truncated.convas", '{"format": "convas", "version": 1, "design": {"nodes": [', "truncated.convas"),
    ("wrong.convas", '{"format": "photoshop", "version": 1}', "photoshop"),
    ("future.convas", '{"format": "convas", "version": 99, "design": {}}', "newer"),
    ("notzip.keras", "this is not a zip archive", "notzip.keras"),
    ("unknown.txt", "hello", "unknown file type"),
    ("missing.convas", None, "no such file"),
])
def test_bad_files_exit_2_with_a_reason_and_no_traceback(tmp_path, capsys, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "summary", str(path))
    assert code == 2, err
    assert needle in err and "Traceback" not in err and out == ""


def test_a_model_with_unsupported_layers_prints_what_it_read_then_exits_2(tmp_path, capsys):
    path = tmp_path / "lambda.json"
    path.write_text(json.dumps(_lambda_model()), encoding="utf-8")
    code, out, err = run(capsys, "summary", str(path))
    assert code == 2
    assert "input_layer (InputLayer)" in out and "evil (Lambda)" in out  # the table of what was read
    assert err.splitlines() == [
        "convas: lambda.json uses 1 layer Convas cannot represent:",
        "  • evil (Lambda): Lambda layers hold Python code, which Convas never runs; rebuild what it "
        "does with catalogue layers"]
    code, out, err = run(capsys, "summary", "--json", str(path))
    assert code == 2 and [layer["name"] for layer in json.loads(out)["layers"]] == ["input_layer", "evil"]
    assert "evil (Lambda)" in err and "Traceback" not in err


def test_train_refuses_a_model_with_unsupported_layers_by_name(tmp_path, capsys):
    path = tmp_path / "lambda.json"
    path.write_text(json.dumps(_lambda_model()), encoding="utf-8")
    code, out, err = run(capsys, "train", str(path), "--out", str(tmp_path / "out.keras"))
    assert code == 2 and out == ""
    assert err.startswith("convas: lambda.json uses 1 layer Convas cannot represent:")
    assert "evil (Lambda): Lambda layers hold Python code" in err
    assert not (tmp_path / "out.keras").exists()


def test_whole_process_needs_no_tensorflow_and_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.convas"
    bad.write_text("{", encoding="utf-8")
    probe = ("import sys, runpy; sys.argv = ['convas'] + sys.argv[1:]\n"
             "from main import main\n"
             "code = main()\n"
             "heavy = [m for m in ('tensorflow', 'keras', 'PySide6') if m in sys.modules]\n"
             "print('HEAVY', heavy, file=sys.stderr); sys.exit(code)\n")
    for path, expected in ((SEED, 0), (bad, 2)):
        proc = subprocess.run([sys.executable, "-c", probe, "summary", str(path)], cwd=ROOT,
                              capture_output=True, text=True)
        assert proc.returncode == expected, proc.stderr
        assert "HEAVY []" in proc.stderr and "Traceback" not in proc.stderr


def test_version_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["--version"])
    assert exit_info.value.code == 0 and "convas 0.1.0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli(["summary", str(SEED), "--batch-size", "0"])
    assert exit_info.value.code == 2 and "must be at least 1" in capsys.readouterr().err


# --- the guard of last resort: a bug is one line, the traceback in a log or under --debug -------

def _bug(*_args, **_kwargs):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("command, target", [
    (["summary", str(SEED)], "engine.cli.analyse"),
    (["train", str(SEED), "--out", "{tmp}/m.keras"], "engine.cli._train"),
    (["export", str(SEED), "--format", "keras", "--out", "{tmp}/m.keras"], "engine.export.command._export"),
], ids=["summary", "train", "export"])
def test_an_internal_error_is_one_line_and_a_log(tmp_path, capsys, monkeypatch, command, target):
    monkeypatch.setenv("CONVAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(target, _bug)
    code, _out, err = run(capsys, *(a.format(tmp=tmp_path) for a in command))
    log = tmp_path / "cache" / "convas.log"
    assert code == 1
    assert err == ("convas: internal error: ZeroDivisionError: division by zero; please report it, "
                   f"with the traceback from {log}\n")
    assert "Traceback (most recent call last)" in log.read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_prints_the_traceback_instead(tmp_path, capsys, monkeypatch, where):
    monkeypatch.setenv("CONVAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("engine.cli.analyse", _bug)
    argv = ["--debug", "summary", str(SEED)] if where == "before" else ["summary", str(SEED), "--debug"]
    code, _out, err = run(capsys, *argv)
    assert code == 1 and "Traceback (most recent call last)" in err and "in _bug" in err
    assert err.endswith("convas: internal error: ZeroDivisionError: division by zero; please report it, "
                        "with the traceback above\n")
    assert not (tmp_path / "cache").exists()


def test_the_entry_point_takes_debug_before_a_command(capsys):
    from main import main as entry

    assert entry(["--debug", "summary", str(SEED)]) == 0
    assert 'Model: "seed_cnn"' in capsys.readouterr().out


def test_a_closed_stdout_is_not_an_internal_error(tmp_path, capsys, monkeypatch):
    """``convas summary … | head -1``: the reader leaves; exit as Unix tools do, quietly."""
    def closed(*_args, **_kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("engine.cli.summary_text", closed)
    code, _out, err = run(capsys, "summary", str(SEED))
    assert code == 141 and err == ""

