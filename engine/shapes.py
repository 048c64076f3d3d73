"""Shape arithmetic shared by every layer family.

A shape is a tuple whose first entry is the batch dimension (usually ``None``), exactly as Keras
prints it: ``(None, 26, 26, 32)``. ``None`` anywhere means "not known until run time" and flows
through every rule untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

Dim = int | None
Shape = tuple[Dim, ...]

# The largest count the analysis believes: no tensor, set of weights or cost past a quadrillion
# (10¹⁵, 4 PB of float32) is something a person meant, and every count above it is reported as a
# problem where it is computed instead of growing without bound (a chain of UpSampling2D layers
# reaches 10⁹⁰ values in a few steps, past any float and any formatter).
MAX_COUNT = 10**15
# The largest whole-number argument (a size, a factor, a number of units): Keras stores them as
# 64-bit integers.
MAX_ARG = 2**63 - 1


def fmt_shape(shape: Sequence[Dim] | None) -> str:
    """Keras-style text: ``(None, 26, 26, 32)``."""
    if shape is None:
        return "?"
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def fmt_size(dims: Sequence[Dim]) -> str:
    """Spatial sizes as people write them: ``13×13``."""
    return "×".join("?" if d is None else str(d) for d in dims)


def known_sizes(dims: Sequence[Dim]) -> tuple[int, ...] | None:
    """``dims`` as ints when every one is known, else None."""
    sizes = tuple(d for d in dims if d is not None)
    return sizes if len(sizes) == len(dims) else None


def elements(shape: Shape) -> int:
    """Number of values in one sample of ``shape`` (0 when a dimension is unknown)."""
    sizes = known_sizes(shape[1:])
    return 0 if sizes is None else prod(sizes)


def spatial_axes(rank: int, data_format: str) -> tuple[list[int], int]:
    """Indices of the spatial axes and of the channel axis in a full (batched) shape."""
    if data_format == "channels_first":
        return list(range(2, rank)), 1
    return list(range(1, rank - 1)), rank - 1


def effective_kernel(kernel: int, dilation: int) -> int:
    """Extent covered by a dilated kernel."""
    return (kernel - 1) * dilation + 1


def conv_length(size: Dim, kernel: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    """Output length of a convolution or pooling window along one axis (Keras's formula).

    ``valid`` may return zero or a negative number; callers turn that into a message.
    """
    if size is None:
        return None
    if padding in ("same", "causal"):
        return (size - 1) // stride + 1
    return (size - effective_kernel(kernel, dilation)) // stride + 1


def deconv_length(
    size: Dim, kernel: int, stride: int, padding: str, output_padding: int | None, dilation: int = 1
) -> Dim:
    """Output length of a transposed convolution along one axis (Keras's formula)."""
    if size is None:
        return None
    k = effective_kernel(kernel, dilation)
    if padding == "valid":
        pad = max(k, stride) - k if output_padding is None else output_padding
        return (size - 1) * stride + k + pad
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + k % 2 + output_padding
