"""How the example designs in ``resources/examples`` are made.

Each builder returns a valid design laid out top to bottom. Every one takes images a built-in
dataset gives and trains as it opens: the classifiers end in 10 classes for Digits (resized to
their input), the autoencoder reconstructs Digits, and the U-Net segments Shapes (its project
keeps those training settings, :func:`training_settings`). ``seed_cnn_sweep`` also holds a search
space and the sweep settings ``convas sweep`` runs it with (:func:`sweep_settings`).
``python -m engine.example_designs``
rewrites the shipped ``.convas`` files from these builders; a test checks they still agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .design import Design, chain
from .layout import apply_design_layout

if TYPE_CHECKING:
    from .sweep_settings import SweepSettings
    from .training import TrainingSettings


def seed_cnn() -> Design:
    return chain(("InputLayer", {"shape": (28, 28, 1)}),
                 ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
                 ("MaxPooling2D", {"pool_size": (2, 2)}),
                 ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
                 ("MaxPooling2D", {"pool_size": (2, 2)}),
                 ("Flatten", {}),
                 ("Dense", {"units": 10, "activation": "softmax"}), name="seed_cnn")


def seed_cnn_sweep() -> Design:
    """The seed CNN with a Dropout before its Dense and search ranges (the learning rate's is in
    :func:`training_settings`): both convolutions' filters and kernel sizes, the first one's
    stride, and the dropout rate. A stride of 2 with large kernels leaves the second
    convolution a kernel larger than its input: such samples are rejected before training."""
    from .search_range import SearchRange

    d = chain(("InputLayer", {"shape": (28, 28, 1)}),
              ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
              ("MaxPooling2D", {"pool_size": (2, 2)}),
              ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
              ("MaxPooling2D", {"pool_size": (2, 2)}),
              ("Flatten", {}),
              ("Dropout", {"rate": 0.25}),
              ("Dense", {"units": 10, "activation": "softmax"}), name="seed_cnn_sweep")
    for conv in ("conv2d", "conv2d_1"):
        d.set_search(conv, "filters", SearchRange.ints(8, 64, 8))
        d.set_search(conv, "kernel_size", SearchRange.among(3, 5, 7))
    d.set_search("conv2d", "strides", SearchRange.among(1, 2))
    d.set_search("dropout", "rate", SearchRange.floats(0.0, 0.5))
    return d


def lenet5() -> Design:
    return chain(("InputLayer", {"shape": (28, 28, 1)}),
                 ("Conv2D", {"filters": 6, "kernel_size": (5, 5), "padding": "same", "activation": "tanh"}),
                 ("AveragePooling2D", {"pool_size": (2, 2)}),
                 ("Conv2D", {"filters": 16, "kernel_size": (5, 5), "activation": "tanh"}),
                 ("AveragePooling2D", {"pool_size": (2, 2)}),
                 ("Flatten", {}),
                 ("Dense", {"units": 120, "activation": "tanh"}),
                 ("Dense", {"units": 84, "activation": "tanh"}),
                 ("Dense", {"units": 10, "activation": "softmax"}), name="lenet5")


def small_vgg() -> Design:
    layers: list[tuple[str, dict]] = [("InputLayer", {"shape": (32, 32, 3)})]
    for filters in (32, 64, 128):
        layers += [("Conv2D", {"filters": filters, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
                   ("Conv2D", {"filters": filters, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
                   ("MaxPooling2D", {"pool_size": (2, 2)})]
    layers += [("Flatten", {}), ("Dense", {"units": 256, "activation": "relu"}), ("Dropout", {"rate": 0.5}),
               ("Dense", {"units": 10, "activation": "softmax"})]
    return chain(*layers, name="small_vgg")


# The examples train on Digits: 1,438 images, 45 steps an epoch. With Keras's default momentum
# (0.99) the moving statistics that validation uses lag far behind, and validation accuracy stays
# at chance (10 %) for the first epochs while training accuracy climbs; 0.9 follows within one.
BN = {"momentum": 0.9}


def resnet_block() -> Design:
    """A residual block between a convolutional stem on 28×28 grey images and a classifier head."""
    d = Design(name="resnet_block")
    d.add("InputLayer", "input_layer", {"shape": (28, 28, 1)})
    d.add("Conv2D", "stem", {"filters": 16, "kernel_size": (3, 3), "padding": "same", "activation": "relu"},
          ["input_layer"])
    d.add("Conv2D", "conv_a", {"filters": 16, "kernel_size": (3, 3), "padding": "same", "use_bias": False}, ["stem"])
    d.add("BatchNormalization", "bn_a", BN, ["conv_a"])
    d.add("ReLU", "relu_a", {}, ["bn_a"])
    d.add("Conv2D", "conv_b", {"filters": 16, "kernel_size": (3, 3), "padding": "same", "use_bias": False}, ["relu_a"])
    d.add("BatchNormalization", "bn_b", BN, ["conv_b"])
    d.add("Add", "add", {}, ["bn_b", "stem"])
    d.add("ReLU", "relu_out", {}, ["add"])
    d.add("GlobalAveragePooling2D", "pool", {}, ["relu_out"])
    d.add("Dense", "dense", {"units": 10, "activation": "softmax"}, ["pool"])
    return d


def inception_module() -> Design:
    """An Inception module between a strided stem on 28×28 grey images and a classifier head."""
    d = Design(name="inception_module")
    d.add("InputLayer", "input_layer", {"shape": (28, 28, 1)})
    conv = lambda f, k: {"filters": f, "kernel_size": (k, k), "padding": "same", "activation": "relu"}  # noqa: E731
    d.add("Conv2D", "stem", {**conv(64, 3), "strides": (2, 2)}, ["input_layer"])
    d.add("Conv2D", "branch1x1", conv(32, 1), ["stem"])
    d.add("Conv2D", "branch3x3_reduce", conv(48, 1), ["stem"])
    d.add("Conv2D", "branch3x3", conv(64, 3), ["branch3x3_reduce"])
    d.add("Conv2D", "branch5x5_reduce", conv(8, 1), ["stem"])
    d.add("Conv2D", "branch5x5", conv(16, 5), ["branch5x5_reduce"])
    d.add("MaxPooling2D", "branch_pool", {"pool_size": (3, 3), "strides": (1, 1), "padding": "same"}, ["stem"])
    d.add("Conv2D", "branch_pool_proj", conv(16, 1), ["branch_pool"])
    d.add("Concatenate", "mixed", {"axis": -1}, ["branch1x1", "branch3x3", "branch5x5", "branch_pool_proj"])
    d.add("GlobalAveragePooling2D", "pool", {}, ["mixed"])
    d.add("Dense", "dense", {"units": 10, "activation": "softmax"}, ["pool"])
    return d


def mobilenet_block() -> Design:
    return chain(("InputLayer", {"shape": (32, 32, 3)}),
                 ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same",
                             "use_bias": False}),
                 ("BatchNormalization", BN), ("ReLU", {"max_value": 6.0}),
                 ("DepthwiseConv2D", {"kernel_size": (3, 3), "padding": "same", "use_bias": False}),
                 ("BatchNormalization", BN), ("ReLU", {"max_value": 6.0}),
                 ("Conv2D", {"filters": 64, "kernel_size": (1, 1), "use_bias": False}),
                 ("BatchNormalization", BN), ("ReLU", {"max_value": 6.0}),
                 ("GlobalAveragePooling2D", {}),
                 ("Dense", {"units": 10, "activation": "softmax"}), name="mobilenet_block")


def conv_autoencoder() -> Design:
    return chain(("InputLayer", {"shape": (28, 28, 1)}),
                 ("Conv2D", {"filters": 16, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
                 ("MaxPooling2D", {"pool_size": (2, 2)}),
                 ("Conv2D", {"filters": 8, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
                 ("MaxPooling2D", {"pool_size": (2, 2)}),
                 ("Conv2DTranspose", {"filters": 8, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same",
                                      "activation": "relu"}),
                 ("Conv2DTranspose", {"filters": 16, "kernel_size": (3, 3), "strides": (2, 2), "padding": "same",
                                      "activation": "relu"}),
                 ("Conv2D", {"filters": 1, "kernel_size": (3, 3), "padding": "same", "activation": "sigmoid"}),
                 name="conv_autoencoder")


def unet_shapes() -> Design:
    """A small U-Net that segments the Shapes dataset: 32×32 grey images, a mask of 5 classes
    (background and the four shapes). Two encoder levels (Conv2D, MaxPooling2D), a bottleneck, and
    a decoder that upsamples once with a learned Conv2DTranspose and once with UpSampling2D, each
    followed by a Concatenate with the encoder's feature map of that size (the skip connection).
    A BatchNormalization after each 3×3 convolution makes it learn in a few epochs."""
    d = Design(name="unet_shapes")

    def conv_bn(name: str, filters: int, source: str) -> str:
        d.add("Conv2D", f"{name}_conv", {"filters": filters, "kernel_size": (3, 3), "padding": "same",
                                         "activation": "relu"}, [source])
        d.add("BatchNormalization", f"{name}_bn", BN, [f"{name}_conv"])
        return f"{name}_bn"

    d.add("InputLayer", "image", {"shape": (32, 32, 1)})
    enc1 = conv_bn("enc1", 16, "image")
    d.add("MaxPooling2D", "enc1_pool", {"pool_size": (2, 2)}, [enc1])
    enc2 = conv_bn("enc2", 32, "enc1_pool")
    d.add("MaxPooling2D", "enc2_pool", {"pool_size": (2, 2)}, [enc2])
    bottom = conv_bn("bottleneck", 64, "enc2_pool")
    d.add("Conv2DTranspose", "dec2_up", {"filters": 32, "kernel_size": (3, 3), "strides": (2, 2),
                                         "padding": "same", "activation": "relu"}, [bottom])
    d.add("Concatenate", "dec2_skip", {"axis": -1}, ["dec2_up", enc2])
    dec2 = conv_bn("dec2", 32, "dec2_skip")
    d.add("UpSampling2D", "dec1_up", {"size": (2, 2)}, [dec2])
    d.add("Concatenate", "dec1_skip", {"axis": -1}, ["dec1_up", enc1])
    dec1 = conv_bn("dec1", 16, "dec1_skip")
    d.add("Conv2D", "mask", {"filters": 5, "kernel_size": (1, 1), "activation": "softmax"}, [dec1])
    return d


BUILDERS: dict[str, Callable[[], Design]] = {
    "seed_cnn": seed_cnn, "seed_cnn_sweep": seed_cnn_sweep, "lenet5": lenet5, "small_vgg": small_vgg,
    "resnet_block": resnet_block,
    "inception_module": inception_module, "mobilenet_block": mobilenet_block,
    "conv_autoencoder": conv_autoencoder, "unet_shapes": unet_shapes,
}


def training_settings(name: str) -> TrainingSettings | None:
    """The training settings example ``name`` ships with (None: the Train panel's defaults,
    Digits with the task inferred), so that it trains as it opens."""
    from .tasks import Task
    from .training import TrainingConfig, TrainingSettings

    if name == "unet_shapes":
        return TrainingSettings("shapes", TrainingConfig(task=Task.SEGMENTATION, epochs=6, learning_rate=0.003))
    if name == "seed_cnn_sweep":
        from .search_range import SearchRange

        return TrainingSettings("digits", TrainingConfig(),
                                search={"learning_rate": SearchRange.floats(1e-4, 1e-2, log=True)})
    return None


# The sweep example's budget: the seed CNN costs 2.44 M MACs; about a tenth of the valid designs
# its ranges make cost more than this and are rejected before training.
SWEEP_MAX_MACS = 4_000_000


def sweep_settings(name: str) -> SweepSettings | None:
    """The sweep settings example ``name`` ships with (None: it has no search space): a short
    search of accuracy against MACs that ``convas sweep`` runs as the file is."""
    from .sweep_settings import Budget, CostKind, Objectives, SweepSettings

    if name != "seed_cnn_sweep":
        return None
    return SweepSettings(Objectives("val_accuracy", CostKind.MACS), trials=12, epochs=2,
                         budget=Budget(max_macs=SWEEP_MAX_MACS))


def build(name: str) -> Design:
    design = BUILDERS[name]()
    apply_design_layout(design)  # a column longer than a window wraps, so Fit shows cards in full
    return design


def write_all() -> None:
    from .examples import EXAMPLES_DIR
    from .project_file import save_project

    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for name in BUILDERS:
        settings = training_settings(name)
        sweep = sweep_settings(name)
        save_project(EXAMPLES_DIR / f"{name}.convas", build(name),
                     settings.to_dict() if settings is not None else None,
                     sweep=sweep.to_dict() if sweep is not None else None)


if __name__ == "__main__":
    write_all()
