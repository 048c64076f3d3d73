"""What the network is fed for each task: a :class:`~engine.datasets.Split` turned into the
``(input, target)`` pairs that task learns from (the :class:`engine.training.TrainingData`
protocol).

- classification: the split as it is (class numbers);
- multi-label and regression: the targets as float32 (multi-hot rows, values ``(N, T)``);
- reconstruction: the image as its own target, the input optionally with Gaussian noise
  (denoising), clipped to the data's pixel range;
- segmentation: the masks as class numbers ``(N, H, W)``, or one-hot ``(N, H, W, classes)``
  float32 where the loss compares like-shaped tensors (Dice, see
  :func:`engine.tasks.one_hot_masks`).

File-backed splits stream: images and masks are decoded batch by batch, never all at once.
TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .datasets import DatasetError, Split, normalise_loss
from .pixel_range import PixelRange
from .tasks import Task, one_hot_masks


@dataclass(frozen=True)
class TaskData:
    """A split fed as ``task`` learns from it; see :func:`task_data`."""

    split: Split
    task: Task
    one_hot: bool = False
    classes: int | None = None
    noise_stddev: float = 0.0  # in [0, 1] pixel units; scaled to the pixel range
    seed: int = 0
    pixel_range: PixelRange = PixelRange.UNIT

    def __len__(self) -> int:
        return len(self.split)

    def as_tf_dataset(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Any:
        """Batched ``(x, target)`` pairs, shuffled (reproducibly by ``seed``) if asked.

        Noise (reconstruction with ``noise_stddev``) is drawn anew every epoch when shuffling
        (training: the model never sees the same noisy image twice, yet a run repeats with its
        seed), and is the same every pass otherwise (validation and evaluation: a fixed noisy set,
        so that epochs compare)."""
        import tensorflow as tf

        if self.task is Task.CLASSIFICATION:
            return self.split.as_tf_dataset(batch_size, shuffle, seed)
        samples = self.split.tf_samples(shuffle, seed)
        if self.task in (Task.MULTILABEL, Task.REGRESSION):
            samples = samples.map(lambda x, y: (x, tf.cast(y, tf.float32)), num_parallel_calls=tf.data.AUTOTUNE)
        elif self.task is Task.SEGMENTATION:
            samples = samples.map(self._mask_target(), num_parallel_calls=tf.data.AUTOTUNE)
        elif self.task is Task.RECONSTRUCTION:
            samples = self._reconstruction(samples, shuffle)
        return samples.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)

    def _mask_target(self):
        import tensorflow as tf

        one_hot, classes = self.one_hot, self.classes

        def target(x, mask):
            mask = tf.cast(mask, tf.int64)
            if one_hot:
                return x, tf.one_hot(mask, int(classes or 0), dtype=tf.float32)
            return x, mask

        return target

    def _reconstruction(self, samples, vary: bool):
        import tensorflow as tf

        if self.noise_stddev <= 0:
            return samples.map(lambda x, _y: (x, x), num_parallel_calls=tf.data.AUTOTUNE)
        high = float(self.pixel_range.scale)
        stddev = float(self.noise_stddev) * high
        seed = int(self.seed)
        # One random key per sample: a new sequence every epoch when training, the same for validation.
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=vary)

        def noisy(pair, key):
            x, _y = pair
            noise = tf.random.stateless_normal(tf.shape(x), seed=tf.stack([key, tf.constant(seed, tf.int64)]),
                                               stddev=stddev, dtype=x.dtype)
            return tf.clip_by_value(x + noise, 0.0, high), x

        return tf.data.Dataset.zip((samples, keys)).map(noisy, num_parallel_calls=tf.data.AUTOTUNE)


def task_data(split: Split, task: Task, *, loss: str | None = None, classes: int | None = None,
              noise_stddev: float = 0.0, seed: int = 0,
              pixel_range: PixelRange = PixelRange.UNIT) -> TaskData:
    """``split`` fed as ``task`` learns from it (see the module's docstring).

    ``loss`` decides whether segmentation masks arrive one-hot (Dice), which needs ``classes``
    (the output's channels). ``noise_stddev`` (reconstruction only) is in [0, 1] pixel units and
    scaled to ``pixel_range``, the range the split's pixels are in; ``seed`` makes the noise
    repeatable."""
    task = Task(task)
    if noise_stddev < 0:
        raise DatasetError(f"the noise's standard deviation must be 0 or more; got {noise_stddev:g}")
    one_hot = one_hot_masks(task, normalise_loss(loss))
    if one_hot and (classes is None or classes < 2):
        raise DatasetError(f"one-hot masks need the number of classes (the output's channels); got {classes}")
    return TaskData(split, task, one_hot, classes, float(noise_stddev) if task is Task.RECONSTRUCTION else 0.0,
                    int(seed), PixelRange(pixel_range))
