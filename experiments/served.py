"""What an application asking the server gets, measured: images asked of a running ``wgan-tf
serve`` over gRPC (``wgan_tf.serving.Client``), given to the dataset's own classifier
(``wgan_tf.metrics.classifier_for``) and compared with real images in its features.

    python experiments/served.py --model-base-path saved_models/flowers --dataset folder:PATH \\
        [--model-name flowers] [--num 500] [--out FILE.json]

For an unconditional model: the share of each class among the samples in the classifier's eyes,
and the Fréchet distance and KID to ``--num`` real images; for a conditional one, ``--num`` images
of every class in turn: how often the classifier finds the class asked for (class accuracy), and
the distances. Used by experiments/conditional.py and experiments/recipes.py (their reports).
"""
import argparse
import json
import os
import socket
import subprocess
import sys

import numpy as np


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def served_images(base_path, num, model_name="wgan", seed=0, per_class=False):
    """(uint8 images, labels asked for or None, class names or None) from ``wgan-tf serve
    --model-base-path base_path`` in a fresh process: seeds ``seed``..``seed + num - 1``; a
    conditional model's for every class (``num`` each when ``per_class``, else the classes in
    turn)."""
    from wgan_tf.serving import Client

    port = _free_port()
    command = [os.path.join(os.path.dirname(sys.executable), "wgan-tf"), "serve",
               "--model-base-path", str(base_path), "--model-name", model_name, "--port",
               str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with Client(f"localhost:{port}", model_name=model_name) as client:
            client.wait_until_ready(300)
            classes = client.class_names()
            if classes is None:
                return client.generate(num, seed=seed), None, None
            labels = np.repeat(np.arange(len(classes)), num) if per_class \
                else np.arange(num) % len(classes)
            images = np.concatenate([client.generate(len(part), seed=seed, labels=part.tolist())
                                     for part in np.array_split(labels, max(len(labels) // 500,
                                                                            1))])
            return images, labels, classes
    finally:
        server.terminate()
        server.wait(60)


def measure(images, labels, spec, class_names=None, num_real=None, seed=0):
    """The classifier's view of ``images`` (uint8): class shares, class accuracy where
    ``labels`` were asked for, FD and KID to ``num_real`` real images of ``spec``."""
    from wgan_tf import metrics, quality

    size, channels = images.shape[1], images.shape[3]
    name, classifier = metrics.classifier_for(spec, size, channels)
    fake = images.astype(np.float32) / 127.5 - 1.0
    features, probabilities = classifier.predict(fake, batch_size=256, verbose=0)
    predicted = probabilities.argmax(axis=1)
    count = probabilities.shape[1]
    from wgan_tf.data import class_names as data_class_names

    names = class_names or data_class_names(spec) or [str(c) for c in range(count)]
    real = quality.real_samples(spec, size, channels, num_real or len(images), seed)
    real_features = classifier.predict(real, batch_size=256, verbose=0)[0]
    kid, kid_std = metrics.kernel_inception_distance(real_features, features, seed=seed)
    result = {"classifier": name, "num": int(len(images)),
              "class_shares": {names[c]: float((predicted == c).mean())
                               for c in range(min(count, len(names)))},
              "classifier_fd": float(metrics.frechet_distance(real_features, features)),
              "classifier_kid": float(kid), "classifier_kid_std": float(kid_std)}
    if labels is not None:
        result["class_accuracy"] = float((predicted == labels).mean())
        result["per_class_accuracy"] = {names[c]: float((predicted[labels == c] == c).mean())
                                        for c in np.unique(labels)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-base-path", required=True)
    parser.add_argument("--model-name", default="wgan")
    parser.add_argument("--dataset", required=True, help="the real data, e.g. folder:PATH")
    parser.add_argument("--num", type=int, default=500,
                        help="images asked for (a conditional model's: per class)")
    parser.add_argument("--out")
    args = parser.parse_args()
    images, labels, classes = served_images(args.model_base_path, args.num, args.model_name,
                                            per_class=True)
    result = measure(images, labels, args.dataset, classes, num_real=2000)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
