"""An auto-encoder's export (the generator's two signatures plus encode and reconstruct) and a
trained WAE served over gRPC and REST: it reconstructs held-out digits far better than noise."""
import base64
import io
import json
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from helpers import tiny_config, wgan_tf
from wgan_tf import autoencoder_models as nets
from wgan_tf.data import builtin
from wgan_tf.export import export_generator, to_uint8
from wgan_tf.serving import Client, ServerError
from wgan_tf.serving.server import ModelServer
from wgan_tf.serving.versions import WARMUP_FILE
from wgan_tf.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small WAE-MMD trained on digits:train (about 15 epochs), exported as version 1."""
    root = tmp_path_factory.mktemp("wae")
    config = tiny_config(model="wae", dataset="digits:train", filters=16, batch_size=32,
                         n_critic=None, critic_boost=None, steps=600, log_every=100,
                         sample_every=600, checkpoint_every=600)
    train(config, str(root / "run"), progress=False)
    return export_generator(root / "run", root / "wae")


@pytest.fixture(scope="module")
def server(trained):
    with ModelServer(trained.parent, port=0, rest_port=0) as s:
        yield s


@pytest.fixture(scope="module")
def held_out():
    return builtin.digits_array(16, 1, "test")[0][:100]


def mse(a, b):
    return float(np.mean((a.astype(np.float64) / 127.5 - b.astype(np.float64) / 127.5) ** 2))


def test_signatures(trained):
    saved_model = saved_model_pb2.SavedModel.FromString((trained / "saved_model.pb").read_bytes())
    sigs = saved_model.meta_graphs[0].signature_def
    assert set(sigs) - {"__saved_model_init_op"} == {
        "serving_default", "from_seeds", "from_seeds_truncated", "interpolate", "encode",
        "reconstruct"}  # a decoder is a generator: latent control too
    for name in ("encode", "reconstruct"):
        images = sigs[name].inputs["images"]
        assert images.dtype == types_pb2.DT_UINT8
        assert [d.size for d in images.tensor_shape.dim] == [-1, 16, 16, 1]
    assert sigs["encode"].outputs["latent"].dtype == types_pb2.DT_FLOAT
    assert [d.size for d in sigs["encode"].outputs["latent"].tensor_shape.dim] == [-1, 8]
    assert sigs["reconstruct"].outputs["images"].dtype == types_pb2.DT_UINT8
    assert sigs["reconstruct"].outputs["png_bytes"].dtype == types_pb2.DT_STRING
    assert [d.size for d in sigs["serving_default"].inputs["latent"].tensor_shape.dim] == [-1, 8]
    ops = {node.op for f in saved_model.meta_graphs[0].graph_def.library.function
           for node in f.node_def}
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in
            tf.data.TFRecordDataset(str(trained / WARMUP_FILE)).as_numpy_iterator()]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == \
        {"serving_default", "from_seeds", "from_seeds_truncated", "interpolate", "encode",
         "reconstruct"}


def test_served_wae_reconstructs_held_out_digits_far_better_than_noise(server, held_out):
    with Client(f"localhost:{server.port}", max_batch=64) as client:  # two requests
        assert client.image_shape() == (16, 16, 1)
        reconstructed = client.reconstruct(held_out)
        assert reconstructed.shape == held_out.shape and reconstructed.dtype == np.uint8
        noise = np.random.default_rng(0).integers(0, 256, held_out.shape, dtype=np.uint8)
        error, noise_error = mse(held_out, reconstructed), mse(noise, client.reconstruct(noise))
        # Its own digit, not any digit: another image's reconstruction is further away.
        others = mse(held_out, np.roll(reconstructed, 1, axis=0))
        assert error < noise_error / 5 and error < others / 2.5, (error, noise_error, others)
        codes = client.encode(held_out[:5])
        assert codes.shape == (5, 8) and codes.dtype == np.float32
        np.testing.assert_array_equal(client.from_latent(codes), reconstructed[:5])
        assert client.generate(3, seed=0).shape == (3, 16, 16, 1)  # samples as any generator's
        with pytest.raises(ServerError, match="INVALID_ARGUMENT"):
            client.reconstruct(np.zeros((2, 8, 8, 1), np.uint8))


def test_rest_reconstruct(server, held_out):
    url = f"http://localhost:{server.rest_port}/v1/models/wgan:predict"
    body = json.dumps({"signature_name": "reconstruct",
                       "instances": held_out[:2].tolist()}).encode()
    answer = json.loads(urllib.request.urlopen(url, body, timeout=30).read())["predictions"]
    with Client(f"localhost:{server.port}") as client:
        expected = client.reconstruct(held_out[:2])
    np.testing.assert_array_equal(answer[1]["images"], expected[1])
    png = Image.open(io.BytesIO(base64.b64decode(answer[0]["png_bytes"]["b64"])))
    np.testing.assert_array_equal(np.asarray(png)[..., None], expected[0])


def test_generate_reconstruct_cli(server, held_out, tmp_path):
    paths = []
    for i, image in enumerate(builtin.digits_array(32, 3, "test")[0][:3]):  # RGB, twice the size
        paths.append(tmp_path / f"in{i}.png")
        Image.fromarray(image).save(paths[-1])
    out = tmp_path / "pairs.png"
    address = f"localhost:{server.port}"
    wgan_tf("generate", "--server", address, "--reconstruct", *paths, "--out", out)
    # one row of 3 images, their reconstructions below, padding 2, enlarged to >= 256 pixels
    picture = np.asarray(Image.open(out))
    scale = picture.shape[1] // (3 * 18 + 2)
    assert picture.shape == (scale * (2 * 18 + 2), scale * (3 * 18 + 2))
    with Client(address) as client:
        expected = client.reconstruct(held_out[:3])
    bottom = picture[::scale, ::scale][20:36, 2:18]
    assert mse(bottom, expected[0][..., 0]) < 0.01  # the digit, read back from a larger RGB PNG


def test_generate_reconstruct_refuses_a_generator(tmp_path):
    from wgan_tf.models import dcgan_generator

    (tmp_path / "run").mkdir()
    dcgan_generator(16, 1, latent_dim=4, filters=8).save(tmp_path / "run" / "generator.keras")
    (tmp_path / "run" / "config.json").write_text(json.dumps({"dataset": "digits"}))
    base = tmp_path / "wgan"
    export_generator(tmp_path / "run", base)
    (tmp_path / "in.png").write_bytes(b"not a png")
    with ModelServer(base, port=0) as gan_server:
        result = wgan_tf("generate", "--server", f"localhost:{gan_server.port}",
                         "--reconstruct", tmp_path / "in.png", "--out", tmp_path / "out.png",
                         check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "no 'reconstruct' signature" in result.stderr, \
        result.stderr
    assert not (tmp_path / "out.png").exists()


def test_vae_export_reconstructs_through_the_posterior_mean(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    encoder = nets.encoder(16, 3, 4, filters=8, gaussian=True)
    decoder = nets.decoder(16, 3, 4, filters=8)
    encoder.save(run / "encoder.keras")
    decoder.save(run / "decoder.keras")
    (run / "config.json").write_text(json.dumps(
        {"model": "vae", "latent_dim": 4, "image_size": 16, "channels": 3, "dataset": "digits"}))
    model = tf.saved_model.load(str(export_generator(run, tmp_path / "vae")))
    images = builtin.digits_array(16, 3)[0][:4]
    mean = encoder(tf.cast(images, tf.float32) / 127.5 - 1.0, training=False)[0]
    np.testing.assert_allclose(model.signatures["encode"](images=images)["latent"], mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.signatures["reconstruct"](images=images)["images"],
                                  to_uint8(decoder(mean, training=False)))
