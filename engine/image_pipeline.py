"""The ``tf.data`` pipeline of file-backed splits: image files (and mask files) decoded as the
model trains, never all at once. TensorFlow is imported inside the functions only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .datasets import Split


def file_samples(split: Split, shuffle: bool = False, seed: int = 0) -> Any:
    """The unbatched ``tf.data.Dataset`` of ``(x, y)`` samples of a file-backed ``split``, shuffled
    if asked; images and masks are decoded after shuffling (cheap paths are shuffled, not pixels)."""
    import tensorflow as tf

    from .datasets import decode_image_file, decode_mask_file

    self = split
    paths, image_shape = self._files()
    scale = self.pixel_scale
    if self.mask_paths is not None:
        shift, palette = self.mask_shift, self.mask_palette
        data = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=str),
                                                   np.asarray(self.mask_paths, dtype=str)))

        def decode(path, mask_path):
            return (decode_image_file(path, image_shape) * scale,
                    decode_mask_file(mask_path, image_shape[:2], shift, palette))
    else:
        data = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=str), self.y))

        def decode(path, label):
            return decode_image_file(path, image_shape) * scale, label

    if shuffle:
        data = data.shuffle(max(1, len(self)), seed=seed, reshuffle_each_iteration=True)
    return data.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
