"""Turn a design into a real ``keras.Model`` (functional API), for training and export.

Each node becomes one Keras layer with the node's name, built from the node's arguments as the
catalogue normalises them (defaults filled in) plus the node's ``config`` (other Keras settings,
such as initialisers, kept verbatim). A node applied several times (a shared layer) becomes one
layer object called once per application, so its weights are shared exactly as in the design.

Most kinds are the ``keras.layers`` class of their name; the others are created from the module
Keras keeps them in (:func:`engine.layers.keras_class_of`): Keras's helper layers of
``keras.applications``, and operations (``OpsAdd`` is ``keras.src.ops.numpy.Add``), which are
created under the node's name and called on their operands (``add(x, 3.0)``, ``add(a, b)``) as
``keras.ops.add`` does, so that the model records the same operation the design was read from.

Keras is imported inside the functions only: importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .design import Design, Node, TensorRef, call_order
from .errors import ConvasError, first_line
from .layers import CATALOGUE, OPERATIONS, Param, ParamKind, keras_class_of

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .analysis import Analysis

# Settings of keras.Input that a node's config may carry (the rest of an InputLayer config, such
# as batch_shape or name, is already said by the node's arguments and name).
_INPUT_CONFIG = ("dtype", "sparse", "ragged", "optional")
# How many problems the "design is invalid" message lists before summarising the rest.
_SHOWN_PROBLEMS = 5


class KerasBuildError(ConvasError):
    """Keras refused to build a layer (``node`` names it) or the design cannot be turned into a
    model at all (``node`` is None)."""

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


def keras_arguments(node: Node) -> dict[str, Any]:
    """The keyword arguments of the Keras constructor for ``node`` (without ``name``).

    The node's ``config`` comes first and its arguments override it, since arguments are what the
    user edits. Raises :class:`KerasBuildError` when an argument is invalid.
    """
    spec = CATALOGUE.get(node.kind)
    marker = node.config.get("unsupported")
    if isinstance(marker, dict) and isinstance(marker.get("reason"), str):
        raise KerasBuildError(f"{node.name}: {marker['reason']}", node.name)
    if spec is None:
        raise KerasBuildError(f"{node.name}: {node.kind} is not a layer type Convas supports",
                              node.name)
    args, problems = spec.normalise(node.args)
    if problems:
        raise KerasBuildError(f"{node.name}: {'; '.join(problems.values())}", node.name)
    # ``trainable`` is the node's own flag (set on the layer once created), never a kept setting.
    kwargs = {k: v for k, v in node.config.items() if k not in ("name", "trainable")}
    for param in spec.params:
        kwargs[param.name] = _keras_value(param, args[param.name])
    return kwargs


def _keras_value(param: Param, value: Any) -> Any:
    """Our canonical argument value in the form the Keras constructor expects."""
    if param.kind == ParamKind.AXES and value is not None:
        # An "axis" argument (Softmax, LayerNormalization) is an int or a list of them, as in a
        # Keras config; other lists of axes (Permute's dims, PReLU's shared_axes) stay lists.
        if param.name == "axis" and len(value) == 1:
            return value[0]
        return list(value)
    return value


def keras_class(kind: str) -> Any:
    """The Keras class that builds ``kind`` (a layer class, or an operation class)."""
    import importlib

    import keras

    module, name = keras_class_of(kind)
    owner = keras.layers if module == "keras.layers" else importlib.import_module(module)
    return getattr(owner, name)


def operands(node: Node, inbound: list[Any]) -> list[Any]:
    """The operands of an operation node, in order: its two input tensors, or its one input and
    its number on the side it was given. :class:`KerasBuildError` when the count does not fit."""
    args, problems = CATALOGUE[node.kind].normalise(node.args)
    if problems:
        raise KerasBuildError(f"{node.name}: {'; '.join(problems.values())}", node.name)
    scalar = args["scalar"]
    wanted = 2 if scalar is None else 1
    if len(inbound) != wanted:
        raise KerasBuildError(f"{node.name}: takes {wanted} input tensor(s) but has {len(inbound)}", node.name)
    if scalar is None:
        return list(inbound)
    return [scalar, inbound[0]] if args["scalar_first"] else [inbound[0], scalar]


def execution_order(design: Design) -> list[TensorRef]:
    """Every call in an order where each comes after the calls feeding it.

    Raises :class:`KerasBuildError` for a reference to a missing node or call, and for a cycle.
    """
    ordering = call_order(design)
    if ordering.dangling:
        name, ref = ordering.dangling[0]
        raise KerasBuildError(f"{name}: its input {ref} does not exist", name)
    if ordering.stuck:
        stuck = sorted({ref.node for ref in ordering.stuck})
        raise KerasBuildError(f"the design has a cycle through {', '.join(stuck)}; "
                              "a network must flow one way")
    return ordering.order


@dataclass
class KerasGraph:
    """The Keras tensors of a design: ``inputs`` in ``design.input_names()`` order, the output
    tensor of every call of every node, and one layer object per (non-input) node (an operation
    object for an operation node)."""

    inputs: list[Any]
    tensors: dict[TensorRef, Any]
    layers: dict[str, Any]

    def model(self, outputs: list[TensorRef], name: str = "model") -> Any:
        """A ``keras.Model`` from the inputs to ``outputs``; a model with one input (output)
        takes (returns) a single tensor, otherwise a list."""
        import keras

        outs = [self.tensors[ref] for ref in outputs]
        try:
            return keras.Model(inputs=self.inputs[0] if len(self.inputs) == 1 else self.inputs,
                               outputs=outs[0] if len(outs) == 1 else outs, name=name)
        except Exception as exc:
            raise KerasBuildError(f"Keras could not assemble the model: {first_line(exc)}") from exc


def build_keras_graph(design: Design) -> KerasGraph:
    """Create every layer of ``design`` and call it on symbolic Keras tensors, with no analysis:
    Keras alone judges, and a layer it refuses raises :class:`KerasBuildError` naming it."""
    import keras

    input_names = design.input_names()
    if not input_names:
        raise KerasBuildError("the design has no InputLayer; add one to say what a sample looks like")
    layers: dict[str, Any] = {}
    tensors: dict[TensorRef, Any] = {}
    for ref in execution_order(design):
        node = design.nodes[ref.node]
        try:
            if node.kind == "InputLayer":
                tensors[ref] = _keras_input(keras, node)
                continue
            if node.name not in layers:
                kwargs = keras_arguments(node)
                if node.kind in OPERATIONS:  # named as in the design; its operands are call arguments
                    kwargs = {}
                layer = keras_class(node.kind)(name=node.name, **kwargs)
                if not node.trainable:
                    # Before the call builds it: Keras then counts its weights as non-trainable,
                    # and a frozen BatchNormalization runs in inference mode.
                    layer.trainable = False
                layers[node.name] = layer
            inbound = [tensors[r] for r in node.inbound[ref.call]]
            # Merge layers take a list of tensors, operations their operands, every other layer a
            # single tensor.
            if node.kind in OPERATIONS:
                tensors[ref] = layers[node.name](*operands(node, inbound))
            elif CATALOGUE[node.kind].max_inputs == 1:
                if len(inbound) != 1:
                    raise KerasBuildError(f"{node.name}: takes 1 input but has {len(inbound)}", node.name)
                tensors[ref] = layers[node.name](inbound[0])
            else:
                tensors[ref] = layers[node.name](inbound)
        except KerasBuildError:
            raise
        except Exception as exc:  # Keras raises ValueError, TypeError, ... depending on the layer
            raise KerasBuildError(f"{node.name}: Keras refused this layer: {first_line(exc)}",
                                  node.name) from exc
    return KerasGraph([tensors[TensorRef(name, 0)] for name in input_names], tensors, layers)


def build_keras_model(design: Design, analysis: Analysis | None = None, *, check: bool = True) -> Any:
    """Build the ``keras.Model`` of ``design``, for training and export.

    The model's inputs are ``design.input_names()`` and its outputs ``design.output_refs()``, in
    that order; a model with one input (output) takes (returns) a single tensor, otherwise a list.
    Layers carry the names of their nodes.

    With ``check`` (the default) the design is analysed first (or ``analysis`` is used) and an
    invalid design raises :class:`ConvasError` listing its problems; without it Keras alone
    judges, and a layer Keras refuses raises :class:`KerasBuildError` naming that layer.
    """
    if check:
        if analysis is None:
            from .analysis import analyse
            analysis = analyse(design)
        if not analysis.valid:
            errors = analysis.errors
            shown = "; ".join(str(p) for p in errors[:_SHOWN_PROBLEMS])
            more = f" (and {len(errors) - _SHOWN_PROBLEMS} more)" if len(errors) > _SHOWN_PROBLEMS else ""
            raise ConvasError(f"the design cannot be built until its problems are fixed: {shown}{more}")
    graph = build_keras_graph(design)
    outputs = design.output_refs()
    if not outputs:
        raise KerasBuildError("the design has no output")
    return graph.model(outputs, design.name)


def _keras_input(keras: Any, node: Node) -> Any:
    args, problems = CATALOGUE["InputLayer"].normalise(node.args)
    if problems:
        raise KerasBuildError(f"{node.name}: {'; '.join(problems.values())}", node.name)
    extra = {k: node.config[k] for k in _INPUT_CONFIG if k in node.config}
    return keras.Input(shape=args["shape"], batch_size=args["batch_size"], name=node.name, **extra)
