"""The ``model.summary()``-style report of an analysed design, as text and as JSON-ready data.

Shared by the CLI (``convas summary``) and the designer's summary panel, so both always agree.
"""

from __future__ import annotations

from typing import Any

from .analysis import Analysis
from .design import Design
from .shapes import fmt_shape


def human_bytes(n: float) -> str:
    """Keras's way of writing sizes: ``136.04 KB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"  # pragma: no cover - loop always returns


def human_count(n: int) -> str:
    """Counts in engineering units: ``2.44 M`` (powers of 1000), small numbers in full."""
    if n < 10_000:
        return f"{n:,}"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)  # pragma: no cover


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


_BOX = {"top": "┏┳┓━", "head": "┃", "sep": "┡╇┩━", "row": "│", "mid": "├┼┤─", "bot": "└┴┘─"}
_ASCII = {"top": "++++-", "head": "|", "sep": "+++=", "row": "|", "mid": "+++-", "bot": "+++-"}


def summary_rows(design: Design, analysis: Analysis) -> list[list[str]]:
    """One row of cells per layer: name (type), output shape, params, MACs, memory, RF, inputs."""
    rows = []
    for name in analysis.order:
        rep = analysis.nodes[name]
        node = design.nodes[name]
        shapes = rep.output_shapes or [None]
        shape_text = "\n".join(fmt_shape(s) if s is not None else ("invalid" if rep.errors else "?")
                               for s in shapes)
        rf = rep.receptive_field()
        inputs = ", ".join(str(r) for refs in node.inbound for r in refs) or "-"
        rows.append([f"{name} ({node.kind})", shape_text, f"{rep.params:,}", human_count(rep.macs),
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

    lines = [f'Model: "{design.name}"', rule("top"), line(headers, box["head"]), rule("sep")]
    for n, row in enumerate(rows):
        parts = [cell.split("\n") for cell in row]
        height = max(len(p) for p in parts)
        for k in range(height):
            lines.append(line([p[k] if k < len(p) else "" for p in parts], box["row"]))
        lines.append(rule("mid") if n < len(rows) - 1 else rule("bot"))
    a = analysis
    lines += [
        f" Total params: {a.total_params:,} ({human_bytes(a.weight_bytes)})",
        f" Trainable params: {a.trainable_params:,} ({human_bytes(4 * a.trainable_params)})",
        f" Non-trainable params: {a.non_trainable_params:,} ({human_bytes(4 * a.non_trainable_params)})",
        f" MACs per sample: {human_count(a.macs)} ({a.macs:,})",
        f" Activation memory, batch {a.batch_size}: {human_bytes(a.activation_bytes)} kept for training, "
        f"{human_bytes(a.peak_inference_bytes)} peak for inference",
    ]
    return "\n".join(lines)
