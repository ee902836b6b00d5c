"""One image, from encoded bytes to a training-sized uint8 square, and the report of what could not
be used as it was.

Preprocessing follows the official WGAN code (``transforms.Scale`` then ``transforms.CenterCrop``
on a PIL image): the shorter side is resized to the target with antialiased bilinear filtering,
the longer side to ``int(size * long / short)``, then the centre square is cut out and rounded back
to uint8, as PIL hands torchvision uint8 pixels. On LSUN-like images this matches the reference
pipeline to within one grey level.
"""
import io
import logging
import threading

import numpy as np
import tensorflow as tf

from wgan_tf.errors import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")

# Leading bytes of the formats above; enough to tell an image file from anything else.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")

log = logging.getLogger("wgan_tf.data")


def check_image_size(image_size):
    if image_size < 1 or image_size & (image_size - 1):
        raise ConfigError(f"image size must be a power of two, got {image_size}")


def looks_like_image(head):
    """Whether ``head`` (the first bytes of a file) starts like JPEG, PNG, GIF, BMP or WebP."""
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _decode_with_pillow(encoded):
    from PIL import Image

    with Image.open(io.BytesIO(np.asarray(encoded).item())) as image:
        return np.asarray(image.convert("RGB"))


def decode(encoded):
    """Encoded JPEG/PNG/GIF/WebP/BMP bytes -> uint8 RGB ``[h, w, 3]``; fails on anything else.

    ``tf.io.decode_image`` handles grayscale, palette, CMYK, 16-bit and alpha (dropped) and takes
    a GIF's first frame, but reads 8-bit BMPs as gray, ignoring their palette; BMP is rare, so
    it goes through Pillow.
    """
    is_bmp = tf.strings.substr(encoded, 0, 2) == b"BM"
    image = tf.cond(
        is_bmp,
        lambda: tf.numpy_function(_decode_with_pillow, [encoded], tf.uint8, stateful=False),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    return tf.ensure_shape(image, [None, None, 3])


def fit(image, image_size, channels):
    """uint8 RGB ``[h, w, 3]`` -> uint8 ``[size, size, channels]``: shorter side resized to
    ``image_size`` (up or down), centre crop; grayscale by ITU-R 601 luma as PIL's ``convert("L")``.
    """
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.minimum(height, width)
    new_height = image_size * height // short
    new_width = image_size * width // short
    resized = tf.image.resize(image, tf.stack([new_height, new_width]), method="bilinear",
                              antialias=True)
    top, left = _half(new_height - image_size), _half(new_width - image_size)
    square = resized[top:top + image_size, left:left + image_size]
    square = tf.cast(tf.clip_by_value(tf.round(square), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(square, [image_size, image_size, channels])


def _half(length):
    """``int(round(length / 2.))`` as torchvision's CenterCrop computes it (halves to even)."""
    return tf.cast(tf.round(tf.cast(length, tf.float32) / 2.0), tf.int32)


class InputReport:
    """What the input pipeline skipped or changed, for the training log.

    ``unreadable`` counts distinct files (or records) that did not decode and were skipped;
    ``unreadable_examples`` names the first few. ``upscaled`` counts images smaller than the
    target that were upscaled. The pipeline fills it from tf.data threads, so it locks; it also
    logs the first few skips and the first upscale as warnings on the ``wgan_tf.data`` logger, so
    nothing is silent even if nobody reads the report.
    """

    NAMED = 5

    def __init__(self):
        self._lock = threading.Lock()
        self._unreadable = set()
        self.unreadable_examples = []
        self.upscaled = 0

    @property
    def unreadable(self):
        return len(self._unreadable)

    def add(self, unreadable_names, upscaled_names, upscaled_sizes):
        """Record one batch's skips and upscales (names as bytes or str, sizes as (h, w))."""
        with self._lock:
            for name in unreadable_names:
                name = _text(name)
                if name in self._unreadable:
                    continue
                self._unreadable.add(name)
                if len(self.unreadable_examples) < self.NAMED:
                    self.unreadable_examples.append(name)
                    log.warning("skipping unreadable image %s", name)
                    if len(self.unreadable_examples) == self.NAMED:
                        log.warning("any further unreadable images are skipped and "
                                    "counted, not named")
            if len(upscaled_names) and not self.upscaled:
                height, width = upscaled_sizes[0]
                log.warning("image %s is %dx%d, smaller than the training size: upscaling it "
                            "and any others like it", _text(upscaled_names[0]), width, height)
            self.upscaled += len(upscaled_names)

    def summary(self):
        """One line for the training log, empty when there is nothing to say."""
        parts = []
        if self.unreadable:
            more = ", ..." if self.unreadable > len(self.unreadable_examples) else ""
            parts.append(f"skipped {self.unreadable} unreadable images "
                         f"({', '.join(self.unreadable_examples)}{more})")
        if self.upscaled:
            parts.append(f"upscaled {self.upscaled} images smaller than the training size")
        return "; ".join(parts)


def _text(name):
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
