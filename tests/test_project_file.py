"""The .convas project format: round trips, atomic saving, precise errors, version migrations."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from engine import project_file
from engine.analysis import analyse
from engine.design import Design, TensorRef
from engine.errors import ConvasError, FileFormatError
from engine.examples import example_names, example_path, load_example, seed_design
from engine.project_file import Project, design_from_dict, design_to_dict, load_project, save_project
from engine.weights import WeightsKind, WeightsSource


def rich_design() -> Design:
    """Every kind of value a design holds: tuples (nested too), shared calls, declared outputs,
    inputs order, verbatim Keras config, missing positions and non-ASCII names."""
    d = Design(name="réseau")
    d.add("InputLayer", "left", {"shape": (32, 32, 3)}, position=(0, 0))
    d.add("InputLayer", "right", {"shape": (32, 32, 3), "batch_size": 8}, position=(240.5, 0))
    d.add("ZeroPadding2D", "pad", {"padding": ((1, 2), (3, 4))}, inputs=["left"])
    d.add("Conv2D", "shared", {"filters": 8, "kernel_size": (3, 3), "strides": (1, 1), "padding": "same",
                               "activation": "relu"}, inputs=["right"], position=(120, 120),
          config={"kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                                         "config": {"seed": 7}, "registered_name": None},
                  "kernel_regularizer": None, "trainable": False, "dtype": "float32"})
    d.add("Conv2D", "adapt", {"filters": 3, "kernel_size": 1}, inputs=["pad"])
    d.connect("adapt", "shared", call=1)
    d.add("Add", "add", inputs=[TensorRef("shared", 0), TensorRef("shared", 1)])
    d.add("RandomZoom", "zoom", {"height_factor": (-0.2, 0.3)}, inputs=["left"])
    d.add("Dropout", "drop", {"rate": 0.25, "noise_shape": (None, 1, 1, 8)}, inputs=["add"])
    d.outputs = [TensorRef("drop"), TensorRef("shared", 1)]
    d.inputs_order = ["right", "left"]
    return d


# --- round trips -------------------------------------------------------------------------

def test_design_made_in_code_survives_save_and_load(tmp_path: Path):
    design = rich_design()
    path = tmp_path / "rich.convas"
    save_project(path, design, training={"epochs": 3, "optimizer": {"name": "adam", "lr": 1e-3}})
    project = load_project(path)
    assert isinstance(project, Project)
    assert project.design == design  # args tuples, calls, outputs, config: all equal
    assert project.design.nodes["pad"].args["padding"] == ((1, 2), (3, 4))
    assert project.training == {"epochs": 3, "optimizer": {"name": "adam", "lr": 1e-3}}
    assert project.app_version == project_file.__version__
    assert analyse(project.design).total_params == analyse(design).total_params


def test_dict_round_trip_is_plain_json_and_lossless():
    design = rich_design()
    data = design_to_dict(design)
    assert json.loads(json.dumps(data)) == data  # nothing JSON cannot hold
    assert data["nodes"][2]["args"]["padding"] == [[1, 2], [3, 4]]
    assert data["nodes"][3]["inbound"] == [[["right", 0]], [["adapt", 0]]]
    assert design_from_dict(json.loads(json.dumps(data))) == design


def test_training_is_optional_and_kept_verbatim(tmp_path: Path):
    path = tmp_path / "p.convas"
    save_project(path, seed_design())
    assert load_project(path).training is None
    assert "training" not in json.loads(path.read_text())
    save_project(path, seed_design(), training={})
    assert load_project(path).training == {}


def test_file_is_versioned_and_tagged(tmp_path: Path):
    path = tmp_path / "p.convas"
    save_project(path, seed_design())
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "convas" and doc["version"] == project_file.VERSION
    assert doc["design"]["name"] == "seed_cnn"


# --- the shipped seed example --------------------------------------------------------------

def test_seed_example_is_the_seed_cnn_in_a_tidy_column():
    assert "seed_cnn" in example_names()
    assert example_path("seed_cnn").name == "seed_cnn.convas"
    design = seed_design()
    assert design.name == "seed_cnn"
    assert [(n.name, n.kind) for n in design] == [
        ("input_layer", "InputLayer"), ("conv2d", "Conv2D"), ("max_pooling2d", "MaxPooling2D"),
        ("conv2d_1", "Conv2D"), ("max_pooling2d_1", "MaxPooling2D"), ("flatten", "Flatten"),
        ("dense", "Dense")]
    xs, ys = zip(*(n.position for n in design))
    assert set(xs) == {0.0} and ys[0] == 0 and all(b - a == ys[1] > 0 for a, b in itertools.pairwise(ys))
    a = analyse(design)
    assert a.valid and a.total_params == 34_826
    assert a.nodes["dense"].output_shape == (None, 10)


def test_seed_example_is_exactly_what_save_project_writes(tmp_path: Path):
    path = tmp_path / "again.convas"
    save_project(path, load_example("seed_cnn"))
    assert path.read_text(encoding="utf-8") == example_path("seed_cnn").read_text(encoding="utf-8")


def test_each_load_returns_a_fresh_design():
    first = seed_design()
    first.remove("dense")
    assert "dense" in seed_design()


def test_unknown_example_is_a_clear_error():
    with pytest.raises(FileFormatError, match="no example named 'nope'.*seed_cnn"):
        example_path("nope")


# --- atomic saving -------------------------------------------------------------------------

def test_save_replaces_an_existing_file_and_leaves_no_temporary(tmp_path: Path):
    path = tmp_path / "p.convas"
    save_project(path, seed_design())
    save_project(path, rich_design())
    assert load_project(path).design == rich_design()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.convas"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, monkeypatch):
    path = tmp_path / "p.convas"
    save_project(path, seed_design())
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project_file.os, "fsync", broken_fsync)
    with pytest.raises(ConvasError, match="could not save p.convas: No space left on device"):
        save_project(path, rich_design())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.convas"]


def test_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "p.convas"
    save_project(path, seed_design())
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(project_file.os, "replace", broken_replace)
    with pytest.raises(ConvasError, match="Permission denied"):
        save_project(path, rich_design())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.convas"]


def test_unsavable_value_is_refused_before_touching_the_disk(tmp_path: Path):
    design = seed_design()
    design.set_arg("dense", "units", {1, 2})
    path = tmp_path / "p.convas"
    with pytest.raises(ConvasError, match="layer 'dense', argument 'units'.*set"):
        save_project(path, design)
    assert list(tmp_path.iterdir()) == []


def test_numpy_like_numbers_are_saved_as_plain_numbers(tmp_path: Path):
    np = pytest.importorskip("numpy")
    design = seed_design()
    design.set_arg("dense", "units", np.int64(12))
    design.nodes["dense"].position = (np.float32(1.5), np.int32(4))
    save_project(tmp_path / "p.convas", design)
    loaded = load_project(tmp_path / "p.convas").design
    assert loaded.nodes["dense"].args["units"] == 12 and type(loaded.nodes["dense"].args["units"]) is int
    assert loaded.nodes["dense"].position == (1.5, 4.0)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_save_keeps_the_permissions_of_the_file_it_replaces(tmp_path: Path):
    path = tmp_path / "p.convas"
    save_project(path, seed_design())
    path.chmod(0o640)
    save_project(path, rich_design())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# --- reading errors ------------------------------------------------------------------------

def seed_doc() -> dict:
    return json.loads(example_path("seed_cnn").read_text(encoding="utf-8"))


def mutated(change) -> dict:
    doc = seed_doc()
    change(doc)
    return doc


def node(doc: dict, i: int) -> dict:
    return doc["design"]["nodes"][i]


BAD_DOCUMENTS = [
    ("not an object", [1, 2], "must be a JSON object"),
    ("no format tag", mutated(lambda d: d.pop("format")), "not a Convas project.*missing"),
    ("wrong format tag", mutated(lambda d: d.update(format="orange")), 'not a Convas project.*"orange"'),
    ("future version", mutated(lambda d: d.update(version=project_file.VERSION + 1)),
     rf"made by a newer Convas \(version {project_file.VERSION + 1}\); update Convas"),
    ("version as text", mutated(lambda d: d.update(version="1")), "'version' must be a whole number"),
    ("unknown old version", mutated(lambda d: d.update(version=0)), "version 0 is not a Convas file version"),
    ("no design", mutated(lambda d: d.pop("design")), "design must be an object, but is null"),
    ("nodes not a list", mutated(lambda d: d["design"].update(nodes={})), "design.nodes must be a list"),
    ("kind not text", mutated(lambda d: node(d, 1).update(kind=3)),
     r"design.nodes\[1\] \('conv2d'\).kind must be text"),
    ("name missing", mutated(lambda d: node(d, 2).pop("name")), r"design.nodes\[2\].name must be text"),
    ("args not an object", mutated(lambda d: node(d, 1).update(args=[1])), r"\('conv2d'\).args must be an object"),
    ("config not an object", mutated(lambda d: node(d, 1).update(config="x")), "config must be an object"),
    ("bad reference", mutated(lambda d: node(d, 1).update(inbound=[["input_layer"]])),
     r"inbound\[0\]\[0\] must be a \[layer name, call number\] pair"),
    ("dangling reference", mutated(lambda d: node(d, 1).update(inbound=[[["ghost", 0]]])),
     "layer 'conv2d' refers to a layer 'ghost' that is not in the file"),
    ("call out of range", mutated(lambda d: node(d, 1).update(inbound=[[["input_layer", 1]]])),
     "refers to call 1 of 'input_layer', which is applied only 1 time"),
    ("duplicate names", mutated(lambda d: node(d, 2).update(name="conv2d")),
     "two layers are named 'conv2d'"),
    ("dangling output", mutated(lambda d: d["design"].update(outputs=[["ghost", 0]])),
     "design.outputs refers to a layer 'ghost'"),
    ("dangling input", mutated(lambda d: d["design"].update(inputs=["ghost"])),
     "design.inputs names a layer 'ghost'"),
    ("bad position", mutated(lambda d: node(d, 0).update(position=[1, "a"])), r"position must be \[x, y\]"),
    ("empty layer name", mutated(lambda d: (node(d, 6).update(name=""),
                                            d["design"].update(outputs=[]))),
     "'' is not a valid layer name"),
    ("training not an object", mutated(lambda d: d.update(training=[1])), "training must be an object"),
]


@pytest.mark.parametrize("doc,expected", [(d, e) for _, d, e in BAD_DOCUMENTS],
                         ids=[i for i, _, _ in BAD_DOCUMENTS])
def test_bad_document_is_a_file_format_error_naming_file_and_fault(tmp_path: Path, doc, expected):
    path = tmp_path / "broken.convas"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(FileFormatError, match=expected) as info:
        load_project(path)
    assert str(info.value).startswith("broken.convas")


def test_truncated_file_reports_line_and_column(tmp_path: Path):
    text = example_path("seed_cnn").read_text(encoding="utf-8")
    path = tmp_path / "cut.convas"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"cut.convas is not valid JSON: .* at line \d+, column \d+ "
                                              r"\(the file looks cut short\)"):
        load_project(path)


def test_syntax_error_in_the_middle_points_at_it(tmp_path: Path):
    path = tmp_path / "typo.convas"
    path.write_text('{"format": "convas",\n "version": 1,,\n "design": {}}', encoding="utf-8")
    with pytest.raises(FileFormatError, match="at line 2, column 15$"):
        load_project(path)


@pytest.mark.parametrize("content,expected", [
    (b"", "typo.convas is empty"),
    (b"   \n", "typo.convas is empty"),
    (b'{"format": "convas", "version": 1, "design": {"name": "\xff"}}', "not a text \\(UTF-8\\) file"),
    (b"[" * 100_000, "nested too deeply|not valid JSON"),
])
def test_unreadable_content_is_a_file_format_error(tmp_path: Path, content: bytes, expected: str):
    path = tmp_path / "typo.convas"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=expected):
        load_project(path)


def test_missing_file_is_a_file_format_error(tmp_path: Path):
    with pytest.raises(FileFormatError, match="cannot read nowhere.convas"):
        load_project(tmp_path / "nowhere.convas")


def test_every_truncation_of_a_project_is_a_file_format_error(tmp_path: Path):
    text = example_path("seed_cnn").read_text(encoding="utf-8")
    path = tmp_path / "cut.convas"
    for end in range(0, len(text) - 2, 7):
        path.write_text(text[:end], encoding="utf-8")
        with pytest.raises(FileFormatError):
            load_project(path)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def test_any_value_replaced_by_any_wrong_type_loads_or_fails_cleanly(tmp_path: Path):
    """Whatever is put anywhere in the document, the reader answers with a design or a
    FileFormatError, never another exception."""
    base = seed_doc()
    path = tmp_path / "m.convas"
    for where in list(_paths(base))[1:]:
        for junk in (None, 7, -1, 2.5, True, "x", [], {}, [[]], [["conv2d", 0]], {"a": 1}):
            doc = copy.deepcopy(base)
            parent = doc
            for key in where[:-1]:
                parent = parent[key]
            parent[where[-1]] = junk
            path.write_text(json.dumps(doc), encoding="utf-8")
            with contextlib.suppress(FileFormatError):
                load_project(path)


# --- migrations ----------------------------------------------------------------------------

def test_older_files_are_upgraded_one_version_at_a_time(tmp_path: Path, monkeypatch):
    """Pretend Convas is at version 3: a version-1 file runs migration 1→2 and then 2→3."""
    path = tmp_path / "old.convas"
    expected = seed_design()
    save_project(path, expected)
    doc = json.loads(path.read_text())
    doc["version"] = 1  # a genuine version-1 file: version 2 only added the optional weights
    path.write_text(json.dumps(doc))
    steps: list[int] = []

    def v1_to_v2(doc: dict) -> dict:  # say version 2 renamed "nodes" to "layers"
        steps.append(1)
        assert doc["version"] == 1
        doc["design"]["layers"] = doc["design"].pop("nodes")
        return doc

    def v2_to_v3(doc: dict) -> dict:  # ... and version 3 renamed it back and added a note
        steps.append(2)
        assert doc["version"] == 2 and "layers" in doc["design"]
        doc["design"]["nodes"] = doc["design"].pop("layers")
        doc["note"] = "migrated"
        return doc

    monkeypatch.setattr(project_file, "VERSION", 3)  # Convas pretends to be two versions ahead
    monkeypatch.setitem(project_file.MIGRATIONS, 1, v1_to_v2)
    monkeypatch.setitem(project_file.MIGRATIONS, 2, v2_to_v3)
    project = load_project(path)
    assert steps == [1, 2]
    assert project.design == expected

    # A version-2 file only needs the second step.
    doc = json.loads(path.read_text())
    doc["version"] = 2
    doc["design"]["layers"] = doc["design"].pop("nodes")
    path.write_text(json.dumps(doc))
    steps.clear()
    assert load_project(path).design == expected
    assert steps == [2]


def test_a_failing_migration_is_a_file_format_error(tmp_path: Path, monkeypatch):
    path = tmp_path / "old.convas"
    save_project(path, seed_design())
    path.write_text(path.read_text().replace(f'"version": {project_file.VERSION}', '"version": 1'))

    def broken(doc: dict) -> dict:
        return doc["no such key"]

    monkeypatch.setattr(project_file, "VERSION", 2)
    monkeypatch.setitem(project_file.MIGRATIONS, 1, broken)
    with pytest.raises(FileFormatError, match="old.convas: could not upgrade it from version 1: KeyError"):
        load_project(path)


def test_current_version_has_a_migration_path_from_every_older_one():
    assert all(v in project_file.MIGRATIONS for v in range(1, project_file.VERSION))


# --- weights beside the project (version 2) --------------------------------------------------

def _folder_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class _Writes:
    """A stand-in for a trained Keras model: its ``save`` writes the weights file."""

    def __init__(self, write) -> None:
        self.save = write


def _trained(description: str, write) -> WeightsSource:
    return WeightsSource(WeightsKind.TRAINED, description, model=_Writes(write))


def test_weights_are_copied_beside_the_project_and_found_again(tmp_path: Path):
    source = tmp_path / "imported" / "resnet.keras"
    source.parent.mkdir()
    source.write_bytes(b"pretend keras archive " * 100)
    path = tmp_path / "work" / "net.convas"
    path.parent.mkdir()
    saved = save_project(path, seed_design(), weights=WeightsSource.imported(source))

    assert saved == path.parent / "net.weights.keras" == project_file.weights_path(path)
    assert saved.read_bytes() == source.read_bytes()
    assert _folder_listing(path.parent) == ["net.convas", "net.weights.keras"]  # no temporaries
    entry = json.loads(path.read_text())["weights"]
    assert entry["file"] == "net.weights.keras" and entry["bytes"] == source.stat().st_size
    assert entry["origin"] == "imported from resnet.keras" and len(entry["sha256"]) == 64

    project = load_project(path)
    assert project.weights is not None and project.warnings == []
    assert project.weights.file == saved and project.weights.description == "imported from resnet.keras"


def test_weights_writer_writes_a_temporary_beside_the_target_then_renames(tmp_path: Path):
    path = tmp_path / "net.convas"
    seen: list[Path] = []

    def write(target: Path) -> None:
        seen.append(target)
        assert target.parent == tmp_path and not target.exists()
        target.write_bytes(b"trained")

    save_project(path, seed_design(), weights=_trained("trained on Digits for 2 epochs", write))
    assert len(seen) == 1 and seen[0].name != "net.weights.keras"
    assert (tmp_path / "net.weights.keras").read_bytes() == b"trained"
    assert _folder_listing(tmp_path) == ["net.convas", "net.weights.keras"]
    assert load_project(path).weights.description == "trained on Digits for 2 epochs"


def test_saving_again_keeps_the_weights_file_in_place(tmp_path: Path):
    path = tmp_path / "net.convas"
    save_project(path, seed_design(), weights=_trained("trained", lambda p: p.write_bytes(b"w1")))
    weights = load_project(path).weights
    before = (tmp_path / "net.weights.keras").stat()
    save_project(path, seed_design(), weights=weights)  # the same file: nothing to copy
    after = (tmp_path / "net.weights.keras").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    # Saving under another name takes the weights along.
    other = tmp_path / "copy.convas"
    save_project(other, seed_design(), weights=weights)
    assert (tmp_path / "copy.weights.keras").read_bytes() == b"w1"
    assert load_project(other).weights.file == tmp_path / "copy.weights.keras"


def test_project_without_weights_has_no_entry_and_none_when_loaded(tmp_path: Path):
    path = tmp_path / "net.convas"
    assert save_project(path, seed_design()) is None
    assert "weights" not in json.loads(path.read_text())
    assert load_project(path).weights is None


def test_missing_weights_file_opens_the_design_with_a_warning(tmp_path: Path):
    path = tmp_path / "net.convas"
    save_project(path, seed_design(), weights=_trained("trained", lambda p: p.write_bytes(b"w")))
    (tmp_path / "net.weights.keras").unlink()
    project = load_project(path)
    assert project.design == seed_design() and project.weights is None
    assert len(project.warnings) == 1
    assert "net.weights.keras is not beside the project" in project.warnings[0]
    assert "fresh, untrained weights" in project.warnings[0]


def test_changed_weights_file_is_used_with_a_warning(tmp_path: Path):
    path = tmp_path / "net.convas"
    save_project(path, seed_design(), weights=_trained("trained", lambda p: p.write_bytes(b"w")))
    (tmp_path / "net.weights.keras").write_bytes(b"other")
    project = load_project(path)
    assert project.weights is not None and project.weights.file == tmp_path / "net.weights.keras"
    assert len(project.warnings) == 1 and "has changed since the project was saved" in project.warnings[0]


def test_failed_weights_write_keeps_the_old_project_and_weights(tmp_path: Path):
    path = tmp_path / "net.convas"
    save_project(path, seed_design(), weights=_trained("first", lambda p: p.write_bytes(b"w1")))
    old_project, old_weights = path.read_bytes(), (tmp_path / "net.weights.keras").read_bytes()

    def fail(target: Path) -> None:
        target.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    changed = seed_design()
    changed.name = "changed"
    with pytest.raises(ConvasError, match="could not save the weights to net.weights.keras: No space left"):
        save_project(path, changed, weights=_trained("second", fail))
    assert path.read_bytes() == old_project
    assert (tmp_path / "net.weights.keras").read_bytes() == old_weights
    assert _folder_listing(tmp_path) == ["net.convas", "net.weights.keras"]


@pytest.mark.parametrize("entry,expected", [
    ({"file": "../escape.keras"}, "weights.file must be a file name beside the project"),
    ({"file": "/etc/passwd"}, "weights.file must be a file name beside the project"),
    ({"file": ""}, "weights.file must be a file name beside the project"),
    ({"file": 3}, "weights.file must be a file name, but is a number"),
    ({"file": "a.keras", "sha256": []}, "weights.sha256 must be text"),
    ([], "weights must be an object, but is a list"),
])
def test_bad_weights_entry_is_a_file_format_error(tmp_path: Path, entry, expected):
    path = tmp_path / "net.convas"
    save_project(path, seed_design())
    doc = json.loads(path.read_text())
    doc["weights"] = entry
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=expected):
        load_project(path)


def test_version_1_file_loads_without_weights(tmp_path: Path):
    path = tmp_path / "old.convas"
    save_project(path, seed_design())
    doc = json.loads(path.read_text())
    doc["version"] = 1
    path.write_text(json.dumps(doc))
    project = load_project(path)
    assert project.design == seed_design() and project.weights is None


def test_weights_file_gone_before_saving_is_a_clear_error(tmp_path: Path):
    source = tmp_path / "pre.keras"
    path = tmp_path / "net.convas"
    with pytest.raises(ConvasError, match=r"were in .*pre.keras, which is gone.*Forget Weights"):
        save_project(path, seed_design(), weights=WeightsSource.imported(source))
    assert _folder_listing(tmp_path) == []


@settings(max_examples=40, deadline=None)
@given(name=st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), min_size=1,
                    max_size=8))
def test_design_names_with_lone_surrogates_save_and_read_back(tmp_path_factory, name: str) -> None:
    """A damaged file can name a design with a lone surrogate ("\\ud800"), which UTF-8 cannot
    hold: saving keeps it as a JSON escape instead of failing, and it reads back the same."""
    design = seed_design()
    design.name = name
    path = tmp_path_factory.mktemp("surrogates") / "x.convas"
    save_project(path, design, None, None)
    # A high and a low surrogate side by side read back as the one character they encode.
    same = name.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
    assert load_project(path).design.name == same
