"""``wgan-tf export``: a run's generator as a SavedModel in TF Serving's layout.

``saved_models/wgan/<version>/`` holds the generator alone with two signatures, the serving API
(see docs DESIGN "Serving model"):

- ``serving_default``: ``latent`` float32 ``[-1, latent_dim]`` -> ``images`` uint8 ``[-1, H, W, C]``
- ``from_seeds``: ``seeds`` int64 ``[-1]`` -> ``images`` uint8 and ``png_bytes`` string ``[-1]``

An auto-encoder run (``--model wae`` or ``vae``) exports its decoder under the same two signatures,
so every client serves its samples unchanged, plus its encoder in two more:

- ``encode``: ``images`` uint8 ``[-1, H, W, C]`` -> ``latent`` float32 ``[-1, latent_dim]`` (the
  VAE's posterior mean)
- ``reconstruct``: ``images`` uint8 ``[-1, H, W, C]`` -> ``images`` uint8 and ``png_bytes``: the
  decoder's image of each image's code, in inference mode (no encoder-input noise, batch norm
  frozen), so an image's reconstruction does not depend on the rest of its batch.

Every input and output has the batch first, so TF Serving's request batching can merge requests.
Each sample's latent comes from its own seed through a stateless Philox draw, so a seed gives the
same image alone or in any batch, on TF Serving and on the Python server alike. Only graph ops are
used (no Python callbacks), because ``tensorflow_model_server`` runs the graph without Python.

A version is written to a hidden temporary directory and renamed into place: a server polling the
base path never sees half a model. An existing version is never overwritten.
"""
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from wgan_tf import autoencoder_models
from wgan_tf.config import sampler_network
from wgan_tf.data.builtin import scale_to_unit
from wgan_tf.errors import ConfigError
from wgan_tf.rundir import load_saved, read_run_config
from wgan_tf.serving.versions import WARMUP_FILE, version_numbers

MODEL_NAME = "wgan"
# Warm-up replays one request per signature and size: the smallest request and a typical grid.
WARMUP_BATCH_SIZES = (1, 64)


def run(args):
    path = export_generator(args.run_dir, args.out, version=args.version,
                            generator=args.generator)
    print(path)


def latents_from_seeds(seeds, latent_dim):
    """One N(0, 1) latent vector per int64 seed: row i depends on ``seeds[i]`` alone.

    ``alg="philox"`` pins the generator (``auto_select`` may change with the device). The
    signatures are not XLA-compiled, and must not be: XLA's CPU kernels turn the same Philox bits
    into other floats when the seed is a runtime tensor (measured with TF 2.21, also with Philox
    given its key and counter directly), which would change every served image.
    """
    def one(seed):
        return tf.random.stateless_normal([latent_dim], seed=tf.stack([seed, tf.zeros_like(seed)]),
                                          alg="philox")
    return tf.map_fn(one, seeds, fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))


def to_uint8(images):
    """[-1, 1] floats to uint8 pixels. Clipping first: the MLP generator's output is linear."""
    images = tf.clip_by_value(tf.cast(images, tf.float32), -1.0, 1.0)
    return tf.cast(tf.round((images + 1.0) * 127.5), tf.uint8)


def export_generator(run_dir, base_path="saved_models/wgan", version=None, generator=None):
    """Write the run's generator (its EMA where the run keeps one, unless ``generator="raw"``; an
    auto-encoder's decoder, with its encoder) as ``base_path/<version>/`` and return that path.

    Raises ConfigError when the run has no generator, is a 2-D toy run (points, not images), or
    when the version already exists.
    """
    run_dir, base_path = Path(run_dir), Path(base_path)
    config = _read_run_config(run_dir)
    name = sampler_network(config, generator)
    generator = _load_generator(run_dir, config, name)
    encoder = _load_encoder(run_dir, generator) if name == "decoder" else None
    version = _choose_version(base_path, version)
    target = base_path / str(version)
    tmp = base_path / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _archive(generator, encoder).write_out(str(tmp), verbose=False)
        write_warmup_requests(tmp / WARMUP_FILE, latent_dim=generator.input_shape[-1],
                              image_shape=generator.output_shape[1:] if encoder else None)
        if target.exists():  # another export took this version meanwhile
            raise ConfigError(f"{target} already exists; versions are never overwritten")
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _read_run_config(run_dir):
    config = read_run_config(run_dir)
    if str(config.get("dataset", "")).startswith("toy:"):
        raise ConfigError(f"{run_dir} was trained on {config['dataset']}: its generator makes "
                          "2-D points, not images, and there is nothing to serve")
    return config


def _load_generator(run_dir, config, name="generator"):
    path = run_dir / f"{name}.keras"
    generator = load_saved(run_dir, name)
    if len(generator.output_shape) != 4 or generator.output_shape[-1] not in (1, 3, 4):
        raise ConfigError(f"{path} outputs {generator.output_shape}; export needs images "
                          "[B, H, W, C] with 1, 3 or 4 channels")
    latent_dim = generator.input_shape[-1]
    if config.get("latent_dim", latent_dim) != latent_dim:
        raise ConfigError(f"{path} takes latent_dim {latent_dim} but config.json says "
                          f"{config['latent_dim']}")
    return generator


def _load_encoder(run_dir, decoder):
    encoder = load_saved(run_dir, "encoder")
    if tuple(encoder.input_shape[1:]) != tuple(decoder.output_shape[1:]):
        raise ConfigError(f"{run_dir / 'encoder.keras'} takes {encoder.input_shape[1:]} images but "
                          f"the decoder makes {decoder.output_shape[1:]}")
    return encoder


def _choose_version(base_path, version):
    present = version_numbers(base_path)
    if version is None:
        return max(present, default=0) + 1
    if version < 1:
        raise ConfigError(f"--version must be a positive integer, got {version}")
    if version in present:
        raise ConfigError(f"{base_path / str(version)} already exists; versions are never "
                          "overwritten (leave out --version for the next free one)")
    return version


def encode_png(images):
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.TensorSpec([], tf.string))


def _archive(generator, encoder=None):
    """The two serving signatures over the generator in inference mode (batch norm frozen), and
    with an ``encoder`` the auto-encoder's two."""
    latent_dim = generator.input_shape[-1]

    def serving_default(latent):
        return {"images": to_uint8(generator(latent, training=False))}

    def from_seeds(seeds):
        images = to_uint8(generator(latents_from_seeds(seeds, latent_dim), training=False))
        return {"images": images, "png_bytes": encode_png(images)}

    archive = keras.export.ExportArchive()
    archive.track(generator)
    archive.add_endpoint("serving_default", serving_default,
                         input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, "latent")])
    archive.add_endpoint("from_seeds", from_seeds,
                         input_signature=[tf.TensorSpec([None], tf.int64, "seeds")])
    if encoder is not None:
        _add_encoder_endpoints(archive, encoder, generator)
    return archive


def _add_encoder_endpoints(archive, encoder, decoder):
    def latent(images):
        return autoencoder_models.code(encoder(scale_to_unit(images), training=False))

    def encode(images):
        return {"latent": latent(images)}

    def reconstruct(images):
        reconstructed = to_uint8(decoder(latent(images), training=False))
        return {"images": reconstructed, "png_bytes": encode_png(reconstructed)}

    archive.track(encoder)
    spec = [tf.TensorSpec([None, *encoder.input_shape[1:]], tf.uint8, "images")]
    archive.add_endpoint("encode", encode, input_signature=spec)
    archive.add_endpoint("reconstruct", reconstruct, input_signature=spec)


def warmup_requests(latent_dim, model_name=MODEL_NAME, image_shape=None):
    """PredictRequests that exercise both signatures at each size in WARMUP_BATCH_SIZES, and with
    an auto-encoder's ``image_shape`` (H, W, C) ``encode`` and ``reconstruct`` too."""
    requests = []
    for n in WARMUP_BATCH_SIZES:
        latent = predict_pb2.PredictRequest()
        latent.model_spec.name, latent.model_spec.signature_name = model_name, "serving_default"
        latent.inputs["latent"].CopyFrom(
            tf.make_tensor_proto(np.zeros((n, latent_dim), np.float32)))
        seeds = predict_pb2.PredictRequest()
        seeds.model_spec.name, seeds.model_spec.signature_name = model_name, "from_seeds"
        seeds.inputs["seeds"].CopyFrom(tf.make_tensor_proto(np.arange(n, dtype=np.int64)))
        requests += [latent, seeds]
        for signature in ("encode", "reconstruct") if image_shape else ():
            images = predict_pb2.PredictRequest()
            images.model_spec.name, images.model_spec.signature_name = model_name, signature
            images.inputs["images"].CopyFrom(
                tf.make_tensor_proto(np.zeros((n, *image_shape), np.uint8)))
            requests.append(images)
    return requests


def write_warmup_requests(path, latent_dim, image_shape=None):
    """TF Serving's warm-up file: a TFRecord of PredictionLog protos, replayed at load time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in warmup_requests(latent_dim, image_shape=image_shape):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
