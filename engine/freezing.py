"""Which layers a transfer-learning user means: the backbone, the head, groups, the top K.

Freezing itself is a flag on each node (``Node.trainable``); this module turns what a person
names — ``backbone``, a group, a layer — into the set of layers it covers, and chooses the layers
fine-tuning's second phase unfreezes. The CLI's ``--freeze``/``--unfreeze``, the GUI's freeze
actions and :func:`engine.training.train` all resolve names here, so they agree.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .design import Design, call_order
from .errors import ConvasError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .analysis import Analysis

BACKBONE = "backbone"
HEAD = "head"
# Layers that turn a feature map into one vector per image: what a classifier's head starts after.
COLLAPSING_KINDS = frozenset({"GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten",
                              "GlobalAveragePooling1D", "GlobalMaxPooling1D"})
# Layers fine-tuning leaves frozen: a BatchNormalization that trains on a small dataset shifts its
# statistics and undoes what the backbone learned (Keras's transfer-learning guide).
STAYS_FROZEN_KINDS = frozenset({"BatchNormalization"})


def _order(design: Design) -> list[str]:
    """Node names, each after the nodes that feed it (first call of each)."""
    seen: set[str] = set()
    order: list[str] = []
    for ref in call_order(design).order:
        if ref.node not in seen:
            seen.add(ref.node)
            order.append(ref.node)
    return order


def head_nodes(design: Design) -> set[str]:
    """The head: what follows the layer that collapses the feature map into a vector (global
    pooling, Flatten) at the start of the plain chain that ends in each output. The chain is
    followed back from the output while each layer has one input that feeds nothing else, so a
    head of several layers is found whole (MobileNetV3's pooling → 1×1 convolutions → Flatten →
    Softmax; VGG's Flatten → Dense → Dense → Dense). Without a collapsing layer on that chain,
    the last one on the way to the outputs counts; a design with none (a segmentation network, an
    autoencoder) has the output layers as its head."""
    readers: dict[str, int] = {}
    for node in design.nodes.values():
        for refs in node.inbound:
            for r in refs:
                readers[r.node] = readers.get(r.node, 0) + 1
    head: set[str] = set()
    for ref in design.output_refs():
        tail = _tail(design, ref.node, readers)
        collapsing = [i for i, n in enumerate(tail) if design.nodes[n].kind in COLLAPSING_KINDS]
        if collapsing:
            head.update(tail[:collapsing[-1]])  # the tail runs backwards: before it = after it
            continue
        head |= _after_last_collapsing(design, ref.node)
    return head


def _tail(design: Design, output: str, readers: dict[str, int]) -> list[str]:
    """The plain chain ending in ``output``, from the output backwards (see :func:`head_nodes`)."""
    tail = [output]
    seen = {output}
    node = design.nodes.get(output)
    while node is not None and node.calls == 1 and len(node.inputs) == 1:
        source = node.inputs[0].node
        if source in seen or source not in design.nodes or readers.get(source, 0) != 1:
            if source in design.nodes and source not in seen:
                tail.append(source)  # where the chain starts (a merge, a branching layer)
            break
        tail.append(source)
        seen.add(source)
        node = design.nodes[source]
    return tail


def _after_last_collapsing(design: Design, output: str) -> set[str]:
    upstream: set[str] = set()
    stack = [output]
    while stack:
        name = stack.pop()
        if name in upstream or name not in design.nodes:
            continue
        upstream.add(name)
        stack.extend(r.node for refs in design.nodes[name].inbound for r in refs)
    order = [n for n in _order(design) if n in upstream]
    collapsing = [i for i, n in enumerate(order) if design.nodes[n].kind in COLLAPSING_KINDS]
    if not collapsing:
        return {output}
    return set(order[collapsing[-1] + 1:])


def backbone_nodes(design: Design) -> set[str]:
    """Every layer but the head (see :func:`head_nodes`) and the inputs."""
    head = head_nodes(design)
    return {n.name for n in design.nodes.values() if n.name not in head and n.kind != "InputLayer"}


def resolve(design: Design, names: Iterable[str]) -> set[str]:
    """The layers ``names`` cover: ``backbone``, ``head``, a group's name (all its layers, nested
    groups included) or a layer's name. :class:`ConvasError` naming an unknown name, with the
    closest known one."""
    covered: set[str] = set()
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        if name.lower() == BACKBONE:
            covered |= backbone_nodes(design)
        elif name.lower() == HEAD:
            covered |= head_nodes(design)
        elif name in design.groups:
            covered |= set(design.group_members(name))
        elif name in design.nodes:
            covered.add(name)
        else:
            known = [*design.nodes, *design.groups, BACKBONE, HEAD]
            close = difflib.get_close_matches(name, known, n=1)
            guess = close[0] if close else None
            hint = f"; did you mean {guess!r}?" if guess else "; give layer or group names, or backbone"
            raise ConvasError(f"no layer or group is named {name!r}{hint}")
    return covered


def frozen_nodes(design: Design) -> set[str]:
    """The layers the design freezes."""
    return {n.name for n in design.nodes.values() if not n.trainable}


def to_unfreeze(design: Design, names: Iterable[str], top: int, weighted: set[str]) -> list[str]:
    """The frozen layers fine-tuning's second phase makes trainable, in call order: those
    ``names`` cover and the ``top`` frozen layers with weights (``weighted``) nearest the output;
    every frozen layer when both are empty. BatchNormalization layers stay frozen."""
    frozen = frozen_nodes(design)
    chosen = resolve(design, names) & frozen
    order = _order(design)
    if top > 0:
        candidates = [n for n in order if n in frozen and n in weighted
                      and design.nodes[n].kind not in STAYS_FROZEN_KINDS]
        chosen |= set(candidates[-top:])
    if not chosen and not list(names) and top <= 0:
        chosen = frozen
    return [n for n in order if n in chosen and design.nodes[n].kind not in STAYS_FROZEN_KINDS]


@dataclass(frozen=True)
class FreezeSummary:
    """What a set of layers (a selection, a group) adds up to: how many, how many are frozen,
    their parameters as Keras counts them, and their multiply-accumulates."""

    layers: int
    frozen: int
    trainable_params: int
    non_trainable_params: int
    macs: int

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def all_frozen(self) -> bool:
        return self.layers > 0 and self.frozen == self.layers

    def frozen_text(self) -> str:
        """``none frozen``, ``3 of 12 frozen`` or ``all 12 frozen``."""
        if not self.frozen:
            return "none frozen"
        return f"all {self.layers} frozen" if self.all_frozen else f"{self.frozen} of {self.layers} frozen"


def freeze_summary(design: Design, analysis: Analysis, names: Iterable[str]) -> FreezeSummary:
    """Sum up the layers ``names`` (those of the design) from ``analysis``."""
    chosen = [n for n in dict.fromkeys(names) if n in design.nodes]
    reports = [analysis.nodes[n] for n in chosen if n in analysis.nodes]
    return FreezeSummary(len(chosen), sum(1 for n in chosen if not design.nodes[n].trainable),
                         sum(r.trainable_params for r in reports), sum(r.non_trainable_params for r in reports),
                         sum(r.macs for r in reports))
