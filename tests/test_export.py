"""Export: TF Serving layout, the signatures (a conditional generator's too), per-seed (and label)
determinism, truncation and interpolation through the signatures, warm-up file, refusals."""
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from helpers import FLOWER_CLASSES, make_conditional_run
from wgan_tf import cli, latents
from wgan_tf.errors import ConfigError
from wgan_tf.export import export_generator, latents_from_seeds, to_uint8
from wgan_tf.models import dcgan_generator
from wgan_tf.serving.servable import Servable
from wgan_tf.serving.versions import WARMUP_FILE

LATENT = 8


def make_run(path, dataset="digits"):
    """A run directory as training leaves it, with a small untrained 16x16 generator."""
    path.mkdir(parents=True)
    generator = dcgan_generator(image_size=16, channels=3, latent_dim=LATENT, filters=8)
    generator.save(path / "generator.keras")
    (path / "config.json").write_text(json.dumps(
        {"latent_dim": LATENT, "image_size": 16, "channels": 3, "arch": "dcgan",
         "dataset": dataset}))
    return generator


def export_new_run(root, make):
    """(generator, version directory, loaded SavedModel) of ``make(root / "run")``'s export."""
    generator = make(root / "run")
    version_dir = export_generator(root / "run", root / "wgan")
    return generator, version_dir, tf.saved_model.load(str(version_dir))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_new_run(tmp_path_factory.mktemp("export"), make_run)


def _shape(info):
    return [d.size for d in info.tensor_shape.dim]


def test_layout_and_signatures(exported):
    _, version_dir, _ = exported
    assert version_dir.name == "1" and (version_dir / "saved_model.pb").is_file()
    saved_model = saved_model_pb2.SavedModel.FromString(
        (version_dir / "saved_model.pb").read_bytes())
    sigs = saved_model.meta_graphs[0].signature_def
    default, seeds = sigs["serving_default"], sigs["from_seeds"]
    assert default.inputs["latent"].dtype == types_pb2.DT_FLOAT
    assert _shape(default.inputs["latent"]) == [-1, LATENT]
    assert set(default.outputs) == {"images"}
    assert default.outputs["images"].dtype == types_pb2.DT_UINT8
    assert _shape(default.outputs["images"]) == [-1, 16, 16, 3]
    assert seeds.inputs["seeds"].dtype == types_pb2.DT_INT64
    assert _shape(seeds.inputs["seeds"]) == [-1]
    assert seeds.outputs["images"].dtype == types_pb2.DT_UINT8
    assert seeds.outputs["png_bytes"].dtype == types_pb2.DT_STRING
    assert _shape(seeds.outputs["png_bytes"]) == [-1]
    truncated, interpolate = sigs["from_seeds_truncated"], sigs["interpolate"]
    assert _specs(truncated.inputs) == {"seeds": ("DT_INT64", [-1]),
                                        "truncation": ("DT_FLOAT", [-1])}
    assert _specs(interpolate.inputs) == {"seed_a": ("DT_INT64", [-1]),
                                          "seed_b": ("DT_INT64", [-1]), "t": ("DT_FLOAT", [-1])}
    for sig in (truncated, interpolate):
        assert _specs(sig.outputs) == {"images": ("DT_UINT8", [-1, 16, 16, 3]),
                                       "png_bytes": ("DT_STRING", [-1])}
    assert set(sigs) - {"__saved_model_init_op"} == \
        {"serving_default", "from_seeds", "from_seeds_truncated", "interpolate"}
    ops = {node.op for f in saved_model.meta_graphs[0].graph_def.library.function
           for node in f.node_def}
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}  # TF Serving has no Python
    assert not any(f.attr["_XlaMustCompile"].b for f in saved_model.meta_graphs[0].graph_def
                   .library.function)  # XLA would turn the Philox bits into other floats


def _specs(infos):
    return {key: (types_pb2.DataType.Name(info.dtype), _shape(info)) for key, info in infos.items()}


def test_same_seed_same_image_in_any_batch(exported):
    _, _, model = exported
    from_seeds = model.signatures["from_seeds"]
    alone = from_seeds(seeds=tf.constant([5], tf.int64))
    batch = from_seeds(seeds=tf.range(8, dtype=tf.int64))
    reordered = from_seeds(seeds=tf.constant([9, 5, -3], tf.int64))
    np.testing.assert_array_equal(alone["images"][0], batch["images"][5])
    np.testing.assert_array_equal(alone["images"][0], reordered["images"][1])
    decoded = np.asarray(Image.open(io.BytesIO(batch["png_bytes"][5].numpy())))
    np.testing.assert_array_equal(decoded, batch["images"][5])


def test_signatures_are_the_generator_in_uint8(exported):
    generator, _, model = exported
    seeds = tf.constant([0, 1, 2], tf.int64)
    latent = latents_from_seeds(seeds, LATENT)
    expected = to_uint8(generator(latent, training=False))
    np.testing.assert_array_equal(model.signatures["serving_default"](latent=latent)["images"],
                                  expected)
    np.testing.assert_array_equal(model.signatures["from_seeds"](seeds=seeds)["images"], expected)


def test_to_uint8_clips_linear_outputs():
    out = to_uint8(tf.constant([-3.0, -1.0, 0.0, 1.0, 2.5]))
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])


def test_warmup_file_is_tfrecord_of_prediction_logs(exported):
    _, version_dir, _ = exported
    records = list(tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE)).as_numpy_iterator())
    assert 0 < len(records) <= 1000  # TF Serving reads at most 1000
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == \
        {"serving_default", "from_seeds", "from_seeds_truncated", "interpolate"}
    assert Servable("wgan", 1, version_dir, max_batch=1).warm_up() == len(records)


def test_next_free_version_and_never_overwrite(tmp_path):
    make_run(tmp_path / "run")
    base = tmp_path / "wgan"
    (base / ".tmp-9-1").mkdir(parents=True)  # not a version: ignored, as by TF Serving
    assert export_generator(tmp_path / "run", base).name == "1"
    assert export_generator(tmp_path / "run", base, version=5).name == "5"
    assert export_generator(tmp_path / "run", base).name == "6"
    before = (base / "5" / "saved_model.pb").read_bytes()
    with pytest.raises(ConfigError, match="never overwritten"):
        export_generator(tmp_path / "run", base, version=5)
    assert (base / "5" / "saved_model.pb").read_bytes() == before
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == ["1", "5", "6"]


def test_refuses_run_without_generator(tmp_path):
    make_run(tmp_path / "run")
    (tmp_path / "run" / "generator.keras").unlink()
    with pytest.raises(ConfigError, match="no generator.keras"):
        export_generator(tmp_path / "run", tmp_path / "wgan")
    assert not (tmp_path / "wgan" / "1").exists()
    with pytest.raises(ConfigError, match="no config.json"):
        export_generator(tmp_path / "nothing", tmp_path / "wgan")


def test_refuses_toy_run(tmp_path):
    make_run(tmp_path / "run", dataset="toy:8gaussians")
    with pytest.raises(ConfigError, match="2-D points"):
        export_generator(tmp_path / "run", tmp_path / "wgan")


def test_cli(tmp_path, capsys):
    make_run(tmp_path / "run")
    out = tmp_path / "wgan"
    assert cli.main(["export", str(tmp_path / "run"), "--out", str(out), "--version", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "3")
    assert cli.main(["export", str(tmp_path / "run"), "--out", str(out), "--version", "3"]) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_truncation_and_interpolation_signatures(exported):
    generator, _, model = exported
    from_seeds, truncated = model.signatures["from_seeds"], model.signatures["from_seeds_truncated"]
    seeds = tf.constant([4, 2, 9], tf.int64)
    psi = tf.constant([0.5, 1.0, 0.3])
    images = truncated(seeds=seeds, truncation=psi)["images"]
    expected = to_uint8(generator(latents.truncated_from_seeds(seeds, psi, LATENT), training=False))
    np.testing.assert_array_equal(images, expected)
    # The same seed (and psi) gives the same image in any batch; psi 6 is no truncation.
    alone = truncated(seeds=tf.constant([2], tf.int64), truncation=tf.constant([1.0]))["images"]
    np.testing.assert_array_equal(alone[0], images[1])
    np.testing.assert_array_equal(
        truncated(seeds=seeds, truncation=tf.fill([3], 6.0))["images"],
        from_seeds(seeds=seeds)["images"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be >= 0"):
        truncated(seeds=seeds, truncation=tf.constant([0.5, -1.0, 0.5]))
    # Interpolation starts and ends at the two seeds' images, bit for bit, in any batch.
    t = tf.constant([0.0, 0.25, 0.5, 1.0, 0.0])
    strip = model.signatures["interpolate"](seed_a=tf.constant([3] * 4 + [8], tf.int64),
                                            seed_b=tf.constant([7] * 4 + [1], tf.int64), t=t)
    ends = from_seeds(seeds=tf.constant([3, 7, 8], tf.int64))["images"]
    np.testing.assert_array_equal(strip["images"][0], ends[0])
    np.testing.assert_array_equal(strip["images"][3], ends[1])
    np.testing.assert_array_equal(strip["images"][4], ends[2])
    assert not np.array_equal(strip["images"][1], ends[0])
    decoded = np.asarray(Image.open(io.BytesIO(strip["png_bytes"][2].numpy())))
    np.testing.assert_array_equal(decoded, strip["images"][2])


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    return export_new_run(tmp_path_factory.mktemp("conditional"), make_conditional_run)


def test_conditional_signatures(conditional):
    _, version_dir, _ = conditional
    saved_model = saved_model_pb2.SavedModel.FromString(
        (version_dir / "saved_model.pb").read_bytes())
    sigs = saved_model.meta_graphs[0].signature_def
    labels = {"labels": ("DT_INT64", [-1])}
    assert _specs(sigs["serving_default"].inputs) == {"latent": ("DT_FLOAT", [-1, 4]), **labels}
    assert _specs(sigs["from_seeds"].inputs) == {"seeds": ("DT_INT64", [-1]), **labels}
    assert _specs(sigs["from_seeds_truncated"].inputs) == {
        "seeds": ("DT_INT64", [-1]), "truncation": ("DT_FLOAT", [-1]), **labels}
    assert _specs(sigs["interpolate"].inputs) == {
        "seed_a": ("DT_INT64", [-1]), "seed_b": ("DT_INT64", [-1]), "t": ("DT_FLOAT", [-1]),
        **labels}
    assert _specs(sigs["classes"].inputs) == {"index": ("DT_INT64", [-1])}
    assert _specs(sigs["classes"].outputs) == {"class_names": ("DT_STRING", [-1, 5])}
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in
            tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE)).as_numpy_iterator()]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == \
        {"serving_default", "from_seeds", "from_seeds_truncated", "interpolate", "classes"}
    assert Servable("wgan", 1, version_dir).warm_up() == len(logs)


def test_conditional_images_are_the_generator_s_for_each_seed_and_label(conditional):
    generator, _, model = conditional
    sigs = model.signatures
    names = sigs["classes"](index=tf.constant([7, 0], tf.int64))["class_names"].numpy()
    assert names.tolist() == [[n.encode() for n in FLOWER_CLASSES]] * 2
    seeds, labels = tf.constant([5, 5, 1, 2], tf.int64), tf.constant([0, 4, 4, 2], tf.int64)
    images = sigs["from_seeds"](seeds=seeds, labels=labels)["images"].numpy()
    expected = to_uint8(generator([latents_from_seeds(seeds, 4), tf.cast(labels, tf.int32)],
                                  training=False))
    np.testing.assert_array_equal(images, expected)
    assert not np.array_equal(images[0], images[1])  # one seed, two classes
    # The same (seed, label) gives the same image in any batch, through every signature.
    alone = sigs["from_seeds"](seeds=tf.constant([2], tf.int64), labels=tf.constant([2], tf.int64))
    np.testing.assert_array_equal(alone["images"][0], images[3])
    z = latents_from_seeds(seeds, 4)
    np.testing.assert_array_equal(sigs["serving_default"](latent=z, labels=labels)["images"],
                                  images)
    np.testing.assert_array_equal(sigs["from_seeds_truncated"](
        seeds=seeds, truncation=tf.fill([4], 6.0), labels=labels)["images"], images)
    strip = sigs["interpolate"](seed_a=tf.constant([5, 9], tf.int64),
                                seed_b=tf.constant([9, 2], tf.int64), t=tf.constant([0.0, 1.0]),
                                labels=tf.constant([4, 2], tf.int64))["images"]
    np.testing.assert_array_equal(strip[0], images[1])
    np.testing.assert_array_equal(strip[1], images[3])


@pytest.mark.parametrize("label", [5, -1])
def test_label_outside_the_classes_is_invalid_argument(conditional, label):
    _, _, model = conditional
    two = tf.constant([1, 2], tf.int64)
    inputs = {"serving_default": {"latent": tf.zeros([2, 4])}, "from_seeds": {"seeds": two},
              "from_seeds_truncated": {"seeds": two, "truncation": tf.fill([2], 0.5)},
              "interpolate": {"seed_a": two, "seed_b": two, "t": tf.fill([2], 0.5)}}
    for signature, values in inputs.items():
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"labels must be class indices in \[0, 5\) \(0 daisy, 1 dandelion"):
            model.signatures[signature](**values, labels=tf.constant([0, label], tf.int64))


def test_conditional_config_must_match_the_generator(tmp_path):
    make_conditional_run(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    for broken, message in [({"conditional": False}, "takes labels but its config.json does not"),
                            ({"class_names": ["one"]}, "two or more distinct"),
                            ({"class_names": ["a", "a"]}, "two or more distinct")]:
        (tmp_path / "run" / "config.json").write_text(json.dumps({**config, **broken}))
        with pytest.raises(ConfigError, match=message):
            export_generator(tmp_path / "run", tmp_path / "wgan")
    make_run(tmp_path / "plain")
    config = json.loads((tmp_path / "plain" / "config.json").read_text())
    (tmp_path / "plain" / "config.json").write_text(json.dumps(
        {**config, "conditional": True, "class_names": ["a", "b"]}))
    with pytest.raises(ConfigError, match="takes no labels but its config.json says"):
        export_generator(tmp_path / "plain", tmp_path / "wgan")
    assert not (tmp_path / "wgan").exists() or not list((tmp_path / "wgan").iterdir())
