"""The ``model.summary()``-style report of an analysed design, as text and as JSON-ready data.

Shared by the CLI (``convas summary``) and the designer's summary panel, so both always agree.
"""

from __future__ import annotations

import math
from typing import Any

from .analysis import Analysis
from .design import Design
from .shapes import fmt_shape
from .text import power_of_ten, printable

# Past this a number is written as a power of ten: its digits would say nothing more, and a
# float could not hold it.
_EXACT_LIMIT = 10**15


def human_bytes(n: float) -> str:
    """Keras's way of writing sizes: ``136.04 KB`` (powers of 1024); any int or float, however
    large (``1.2e90 GB``), ``inf`` and ``nan`` included."""
    if isinstance(n, float) and not math.isfinite(n):
        return f"{n} B"
    if abs(n) >= _EXACT_LIMIT * 1024**3:
        return f"{power_of_ten(n // 1024**3)} GB"
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if abs(size) < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def human_count(n: float) -> str:
    """Counts in engineering units: ``2.44 M`` (powers of 1000), small numbers in full, huge
    ones as a power of ten (``1.2e90``); any int or float."""
    if isinstance(n, float) and not math.isfinite(n):
        return str(n)
    if abs(n) < 10_000:
        return f"{n:,}"
    if abs(n) >= _EXACT_LIMIT:
        return power_of_ten(n)
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)  # pragma: no cover - |n| ≥ 10,000 always has a unit


def exact_count(n: int) -> str:
    """``1,234,567``, or a power of ten for a number too long to be worth its digits."""
    return f"{n:,}" if abs(n) < _EXACT_LIMIT else power_of_ten(n)


# How much of a wide cell the text summary shows: a merge of 10,000 inputs or a layer shared
# 10,000 times would otherwise pad every row of the table to its widest (or tallest) cell.
MAX_LISTED = 5       # inputs in "Connected to", output shapes of a shared layer
MAX_NAME = 60        # characters of a name


def short_name(name: str) -> str:
    """``name`` safe to print (see :func:`printable`) and at most :data:`MAX_NAME` characters."""
    shown = printable(name)
    return shown if len(shown) <= MAX_NAME else shown[: MAX_NAME - 1] + "…"


def _listed(items: list[str], total: int, separator: str, noun: str = "") -> str:
    """The first :data:`MAX_LISTED` of ``total`` items (``items`` need hold only those), then
    ``… and 9,995 more``."""
    if total <= MAX_LISTED:
        return separator.join(items[:total])
    return separator.join([*items[:MAX_LISTED], f"… and {total - MAX_LISTED:,} more{noun}"])


def _plain(shape: Any) -> Any:
    return None if shape is None else list(shape)


def summary_dict(design: Design, analysis: Analysis) -> dict[str, Any]:
    """The ``convas summary --json`` document (field names fixed by the CLI contract)."""
    layers = []
    for name in analysis.order:
        rep = analysis.nodes[name]
        node = design.nodes[name]
        inputs = list(dict.fromkeys(r.node for refs in node.inbound for r in refs))
        shapes = [_plain(s) for s in rep.output_shapes]
        layers.append({
            "name": name,
            "type": node.kind,
            "inputs": inputs,
            "output_shape": shapes[0] if len(shapes) == 1 else (shapes or None),
            "params": rep.params,
            "trainable_params": rep.trainable_params,
            "macs": rep.macs,
            "activation_bytes": rep.activation_bytes,
            "receptive_field": rep.receptive_field(),
            "effective_stride": rep.effective_stride(),
        })
        if not node.trainable:  # only said of frozen layers, as the project file does
            layers[-1]["frozen"] = True
    return {
        "model": design.name,
        "layers": layers,
        "total_params": analysis.total_params,
        "trainable_params": analysis.trainable_params,
        "non_trainable_params": analysis.non_trainable_params,
        "weight_bytes": analysis.weight_bytes,
        "macs": analysis.macs,
        "activation_bytes": analysis.activation_bytes,
        "batch_size": analysis.batch_size,
    }


# Keras draws its header in heavy lines (┏━┓), which default Windows fonts lack (outside WGL4):
# the header here is ruled with the double lines every default font has.
_BOX = {"top": "╒╤╕═", "head": "│", "sep": "╞╪╡═", "row": "│", "mid": "├┼┤─", "bot": "└┴┘─"}
_ASCII = {"top": "++++-", "head": "|", "sep": "+++=", "row": "|", "mid": "+++-", "bot": "+++-"}


def summary_rows(design: Design, analysis: Analysis) -> list[list[str]]:
    """One row of cells per layer: name (type) (``[frozen]`` after a frozen layer's), output
    shape, params, MACs, memory, RF, inputs."""
    rows = []
    for name in analysis.order:
        rep = analysis.nodes[name]
        node = design.nodes[name]
        shapes = rep.output_shapes or [None]
        shape_text = _listed([fmt_shape(s) if s is not None else ("invalid" if rep.errors else "?")
                              for s in shapes[:MAX_LISTED]], len(shapes), "\n", " calls")
        rf = rep.receptive_field()
        refs = [r for refs in node.inbound for r in refs]
        inputs = _listed([short_name(str(r)) for r in refs[:MAX_LISTED]], len(refs), ", ") or "-"
        frozen = "" if node.trainable else " [frozen]"
        rows.append([f"{short_name(name)} ({short_name(node.kind)}){frozen}", shape_text, exact_count(rep.params),
                     human_count(rep.macs),
                     human_bytes(rep.activation_bytes),
                     "-" if rf is None else "×".join(f"{v:g}" for v in rf), inputs])
    return rows


def summary_text(design: Design, analysis: Analysis, unicode: bool = True) -> str:
    """A table like Keras's ``model.summary()``, with MACs, memory and receptive field added."""
    headers = ["Layer (type)", "Output Shape", "Param #", "MACs", "Activations", "RF", "Connected to"]
    right = {2, 3, 4}
    rows = summary_rows(design, analysis)
    widths = [max([len(h)] + [len(line) for r in rows for line in r[i].split("\n")]) for i, h in enumerate(headers)]
    box = _BOX if unicode else _ASCII

    def rule(kind: str) -> str:
        left, cross, end, fill = box[kind][0], box[kind][1], box[kind][2], box[kind][-1]
        return left + cross.join(fill * (w + 2) for w in widths) + end

    def line(cells: list[str], bar: str) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            out.append(" " + (cell.rjust(w) if i in right else cell.ljust(w)) + " ")
        return bar + bar.join(out) + bar

    lines = [f'Model: "{short_name(design.name)}"', rule("top"), line(headers, box["head"]), rule("sep")]
    for n, row in enumerate(rows):
        parts = [cell.split("\n") for cell in row]
        height = max(len(p) for p in parts)
        for k in range(height):
            lines.append(line([p[k] if k < len(p) else "" for p in parts], box["row"]))
        lines.append(rule("mid") if n < len(rows) - 1 else rule("bot"))
    a = analysis
    unknown = len(a.unsupported)  # layers Convas does not know: their weights and costs are not counted
    of_unknown = f"of {unknown} unsupported layer{'s' if unknown != 1 else ''}, unknown"
    lines += [
        f" Total params: {exact_count(a.total_params)} ({human_bytes(a.weight_bytes)})",
        *([f" + parameters {of_unknown}"] if unknown else []),
        f" Trainable params: {exact_count(a.trainable_params)} ({human_bytes(4 * a.trainable_params)})",
        f" Non-trainable params: {exact_count(a.non_trainable_params)} "
        f"({human_bytes(4 * a.non_trainable_params)})",
        f" MACs per sample: {human_count(a.macs)} ({exact_count(a.macs)})",
        *([f" + MACs {of_unknown}"] if unknown else []),
        f" Activation memory, batch {a.batch_size}: {human_bytes(a.activation_bytes)} kept for training, "
        f"{human_bytes(a.peak_inference_bytes)} peak for inference",
    ]
    return "\n".join(lines)
