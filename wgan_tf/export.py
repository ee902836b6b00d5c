"""``wgan-tf export``: a run's generator as a SavedModel in TF Serving's layout.

``saved_models/wgan/<version>/`` holds the generator alone with these signatures, the serving API
(see docs DESIGN "Serving model"):

- ``serving_default``: ``latent`` float32 ``[-1, latent_dim]`` -> ``images`` uint8 ``[-1, H, W, C]``
- ``from_seeds``: ``seeds`` int64 ``[-1]`` -> ``images`` uint8 and ``png_bytes`` string ``[-1]``
- ``from_seeds_truncated``: ``seeds`` int64 ``[-1]``, ``truncation`` float32 ``[-1]`` (psi per
  sample) -> ``images``, ``png_bytes``: each seed's latent with every coordinate outside
  [-psi, psi] resampled inside it (the truncation trick; ``latents.truncated_from_seeds``)
- ``interpolate``: ``seed_a``, ``seed_b`` int64 ``[-1]``, ``t`` float32 ``[-1]`` -> ``images``,
  ``png_bytes``: the image at fraction t of the spherical path between the two seeds' latents (the
  latents of ``from_seeds``; t = 0 and t = 1 give exactly their images)

A conditional generator (a run with ``"conditional": true`` and its ``class_names`` in
config.json) takes ``labels`` int64 ``[-1]`` (class indices) beside the inputs of each of those
four, and adds

- ``classes``: ``index`` int64 ``[-1]`` (any values) -> ``class_names`` string ``[-1, K]``, every
  row all the class names in label order: the names travel inside the SavedModel, and the input
  is batched only so that TF Serving's request batching can take it.

A label outside [0, K) fails inside the graph (InvalidArgumentError: INVALID_ARGUMENT over gRPC,
400 over REST, on TF Serving and the Python server alike).

An auto-encoder run (``--model wae`` or ``vae``) exports its decoder under the generator's
signatures, so every client serves its samples unchanged, plus its encoder in two more:

- ``encode``: ``images`` uint8 ``[-1, H, W, C]`` -> ``latent`` float32 ``[-1, latent_dim]`` (the
  VAE's posterior mean)
- ``reconstruct``: ``images`` uint8 ``[-1, H, W, C]`` -> ``images`` uint8 and ``png_bytes``: the
  decoder's image of each image's code, in inference mode (no encoder-input noise, batch norm
  frozen), so an image's reconstruction does not depend on the rest of its batch.

Every input and output has the batch first, so TF Serving's request batching can merge requests.
Each sample's latent comes from its own seed through stateless Philox draws (``wgan_tf.latents``),
so a seed (and label) gives the same image alone or in any batch, on TF Serving and on the Python
server alike. Only graph ops are used (no Python callbacks), because ``tensorflow_model_server``
runs the graph without Python.

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

from wgan_tf import autoencoder_models, latents, models
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


latents_from_seeds = latents.from_seeds  # the name tests and older code import


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
    class_names = _class_names(run_dir, config, generator)
    encoder = _load_encoder(run_dir, generator) if name == "decoder" else None
    version = _choose_version(base_path, version)
    target = base_path / str(version)
    tmp = base_path / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _archive(generator, encoder, class_names).write_out(str(tmp), verbose=False)
        write_warmup_requests(tmp / WARMUP_FILE, latent_dim=models.latent_dim(generator),
                              image_shape=generator.output_shape[1:] if encoder else None,
                              num_classes=len(class_names) if class_names else None)
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
    latent_dim = models.latent_dim(generator)
    if config.get("latent_dim", latent_dim) != latent_dim:
        raise ConfigError(f"{path} takes latent_dim {latent_dim} but config.json says "
                          f"{config['latent_dim']}")
    return generator


def _class_names(run_dir, config, generator):
    """The class names of a conditional run (config.json's ``class_names``, index = label), None
    for an unconditional one; a generator and config.json that disagree are a ConfigError."""
    names = config.get("class_names") if config.get("conditional") else None
    if models.is_conditional(generator) != (names is not None):
        has = "takes" if models.is_conditional(generator) else "takes no"
        says = "says" if config.get("conditional") else "does not say"
        raise ConfigError(f"{run_dir}'s generator {has} labels but its config.json {says} "
                          '"conditional": true with "class_names"')
    if names is not None and (len(names) < 2 or len(set(map(str, names))) != len(names)
                              or not all(isinstance(n, str) and n for n in names)):
        raise ConfigError(f"{run_dir}/config.json: class_names must be two or more distinct "
                          f"non-empty strings, got {names!r}")
    return names


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


def _archive(generator, encoder=None, class_names=None):
    """The serving signatures over the generator in inference mode (batch norm frozen); with
    ``class_names`` a conditional generator's (each takes ``labels`` too, and ``classes``); with
    an ``encoder`` the auto-encoder's two."""
    latent_dim = models.latent_dim(generator)
    seed = tf.TensorSpec([None], tf.int64, "seeds")
    signatures = {
        "serving_default": ([tf.TensorSpec([None, latent_dim], tf.float32, "latent")],
                            lambda latent: latent),
        "from_seeds": ([seed], lambda seeds: latents.from_seeds(seeds, latent_dim)),
        "from_seeds_truncated": (
            [seed, tf.TensorSpec([None], tf.float32, "truncation")],
            lambda seeds, psi: latents.truncated_from_seeds(seeds, psi, latent_dim)),
        "interpolate": (
            [tf.TensorSpec([None], tf.int64, "seed_a"), tf.TensorSpec([None], tf.int64, "seed_b"),
             tf.TensorSpec([None], tf.float32, "t")],
            lambda a, b, t: latents.slerp(latents.from_seeds(a, latent_dim),
                                          latents.from_seeds(b, latent_dim), t)),
    }
    # No archive.track(network): add_endpoint already keeps the variables its functions use, and
    # tracking the Keras model as well stores every weight a second time (the colour model:
    # 8.8 MB instead of 4.6 MB, the same images).
    archive = keras.export.ExportArchive()
    for name, (specs, latent) in signatures.items():
        archive.add_endpoint(name, *_endpoint(generator, latent, specs, class_names,
                                              png=name != "serving_default"))
    if class_names is not None:
        def classes(index):
            names = tf.constant(class_names, tf.string)
            return {"class_names": tf.tile(names[None], [tf.size(index), 1])}
        archive.add_endpoint("classes", classes,
                             input_signature=[tf.TensorSpec([None], tf.int64, "index")])
    if encoder is not None:
        _add_encoder_endpoints(archive, encoder, generator)
    return archive


def _endpoint(generator, latent, specs, class_names, png):
    """(function, input signature) of a signature that makes images from ``latent(*inputs)``,
    with a conditional generator's ``labels`` appended to the inputs."""
    if class_names is None:
        def unconditional(*inputs):
            return _outputs(generator(latent(*inputs), training=False), png)
        return unconditional, specs

    def conditional(*inputs):
        *inputs, labels = inputs
        labels = _checked_labels(labels, class_names)
        return _outputs(generator([latent(*inputs), labels], training=False), png)
    return conditional, [*specs, tf.TensorSpec([None], tf.int64, "labels")]


def _checked_labels(labels, class_names):
    """int64 labels as the generator's int32, after a graph-side check that each is a class."""
    k = len(class_names)
    shown = ", ".join(name if name == str(i) else f"{i} {name}"  # digits: just "0, 1, ..."
                      for i, name in enumerate(class_names[:20]))
    more = f", ... ({k} classes: the classes signature names all)" if k > 20 else ""
    check = tf.debugging.Assert(tf.reduce_all((labels >= 0) & (labels < k)), [
        f"labels must be class indices in [0, {k}) ({shown}{more}), got", labels])
    with tf.control_dependencies([check]):
        return tf.cast(labels, tf.int32)


def _outputs(images, png=True):
    images = to_uint8(images)
    return {"images": images, "png_bytes": encode_png(images)} if png else {"images": images}


def _add_encoder_endpoints(archive, encoder, decoder):
    def latent(images):
        return autoencoder_models.code(encoder(scale_to_unit(images), training=False))

    def encode(images):
        return {"latent": latent(images)}

    def reconstruct(images):
        reconstructed = to_uint8(decoder(latent(images), training=False))
        return {"images": reconstructed, "png_bytes": encode_png(reconstructed)}

    spec = [tf.TensorSpec([None, *encoder.input_shape[1:]], tf.uint8, "images")]
    archive.add_endpoint("encode", encode, input_signature=spec)
    archive.add_endpoint("reconstruct", reconstruct, input_signature=spec)


def warmup_requests(latent_dim, model_name=MODEL_NAME, image_shape=None, num_classes=None):
    """PredictRequests that exercise every signature at each size in WARMUP_BATCH_SIZES: with
    ``num_classes`` a conditional generator's (labels cycling through the classes), with an
    auto-encoder's ``image_shape`` (H, W, C) ``encode`` and ``reconstruct`` too."""
    requests = []
    for n in WARMUP_BATCH_SIZES:
        seeds = np.arange(n, dtype=np.int64)
        inputs = {
            "serving_default": {"latent": np.zeros((n, latent_dim), np.float32)},
            "from_seeds": {"seeds": seeds},
            "from_seeds_truncated": {"seeds": seeds, "truncation": np.full(n, 0.5, np.float32)},
            "interpolate": {"seed_a": seeds, "seed_b": seeds + n,
                            "t": np.linspace(0, 1, n, dtype=np.float32)},
        }
        if num_classes:
            for values in inputs.values():
                values["labels"] = seeds % num_classes
            inputs["classes"] = {"index": seeds}
        if image_shape:
            for signature in ("encode", "reconstruct"):
                inputs[signature] = {"images": np.zeros((n, *image_shape), np.uint8)}
        for signature, values in inputs.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = model_name, signature
            for key, value in values.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            requests.append(request)
    return requests


def write_warmup_requests(path, latent_dim, image_shape=None, num_classes=None):
    """TF Serving's warm-up file: a TFRecord of PredictionLog protos, replayed at load time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in warmup_requests(latent_dim, image_shape=image_shape,
                                       num_classes=num_classes):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
