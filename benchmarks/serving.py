"""Serving speed of the paper's 64x64x3 DCGAN generator (latent 100, 64 filters), untrained: the
weights do not change the arithmetic, so timings hold for a trained one.

Measures, against ``wgan-tf serve`` started as a separate process on a free port:
- p50/p99 latency of one request for 1 and for 64 images (``Client.generate``, ``from_seeds``);
- throughput with 8 concurrent clients, each asking for 1 or for 64 images per request;
- the overhead of a 64-image request over gRPC against calling the same ``from_seeds`` signature
  of the same SavedModel in-process (target: at most 1.5x).
``--sweep`` also times the in-process signature per batch size, the measurement behind
``serving/batching.config``.

    .venv/bin/python benchmarks/serving.py [--repeats 200] [--repeats-64 30] [--sweep]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from wgan_tf.export import export_generator
from wgan_tf.models import dcgan_generator
from wgan_tf.serving import Client

CLIENTS = 8


def percentiles(seconds):
    ms = np.array(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(calls, repeats):
    """Seconds per call of each of ``calls``, taken in turn so that load from other processes on
    a shared machine falls on all of them alike."""
    for call in calls:
        call()  # first call outside the sample: allocations, kernel choice
    samples = [[] for _ in calls]
    for _ in range(repeats):
        for call, sample in zip(calls, samples):
            start = time.perf_counter()
            call()
            sample.append(time.perf_counter() - start)
    return samples


def export_paper_generator(root, image_size=64):
    """The paper's DCGAN generator, untrained, exported as ``root/wgan/1``."""
    run = root / "run"
    run.mkdir()
    dcgan_generator(image_size=image_size, channels=3, latent_dim=100).save(
        run / "generator.keras")
    (run / "config.json").write_text(json.dumps(
        {"latent_dim": 100, "image_size": image_size, "channels": 3, "arch": "dcgan",
         "dataset": "lsun/bedroom"}))
    return export_generator(run, root / "wgan")


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def throughput(address, images_per_request, requests_per_client):
    """Images per second with CLIENTS threads, each with its own channel, asking back to back."""
    clients = [Client(address) for _ in range(CLIENTS)]
    for c in clients:
        c.generate(1)
    barrier = threading.Barrier(CLIENTS + 1)

    def work(client, offset):
        barrier.wait()
        for i in range(requests_per_client):
            client.generate(images_per_request, seed=offset + i * images_per_request)

    threads = [threading.Thread(target=work, args=(c, k * 10**6)) for k, c in enumerate(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in clients:
        c.close()
    return CLIENTS * requests_per_client * images_per_request / elapsed


def sweep(model, sizes):
    """Best-of-runs milliseconds per batch for both signatures: the cost of the computation
    itself, which the minimum shows best on a machine shared with other work."""
    rows = []
    for n in sizes:
        seeds, latent = tf.range(n, dtype=tf.int64), tf.zeros([n, 100])
        calls = [lambda: model.signatures["from_seeds"](seeds=seeds),
                 lambda: model.signatures["serving_default"](latent=latent)]
        seeds_ms, latent_ms = (min(s) * 1e3 for s in timed(calls, max(3, 64 // n)))
        rows.append((n, seeds_ms, latent_ms))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200,
                        help="timed 1-image requests of each kind (default: %(default)s)")
    parser.add_argument("--repeats-64", type=int, default=30,
                        help="timed 64-image requests of each kind (default: %(default)s)")
    parser.add_argument("--sweep", action="store_true", help="also time batch sizes in-process")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        version_dir = export_paper_generator(Path(tmp))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "wgan_tf.cli", "serve", "--model-base-path",
             str(version_dir.parent), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        try:
            address = f"localhost:{port}"
            client = Client(address, timeout=120)
            client.wait_until_ready(120)
            model = tf.saved_model.load(str(version_dir))
            from_seeds = model.signatures["from_seeds"]

            rows = {}
            for n, repeats in ((1, args.repeats), (64, args.repeats_64)):
                seeds = tf.range(n, dtype=tf.int64)
                local, remote = timed([lambda: from_seeds(seeds=seeds),
                                       lambda: client.generate(n)], repeats)
                rows[f"in-process from_seeds, {n} image(s)"] = percentiles(local)
                rows[f"gRPC Client.generate, {n} image(s)"] = percentiles(remote)
            print(f"{'latency (ms)':44s} {'p50':>8s} {'p99':>8s}")
            for name, (p50, p99) in rows.items():
                print(f"{name:44s} {p50:8.1f} {p99:8.1f}")
            ratio = rows["gRPC Client.generate, 64 image(s)"][0] / \
                rows["in-process from_seeds, 64 image(s)"][0]
            print(f"gRPC / in-process, 64 images (p50): {ratio:.2f}x (target <= 1.5x)")
            for n, requests in ((1, 25), (64, 2)):
                rate = throughput(address, n, requests)
                print(f"throughput, {CLIENTS} clients x {requests} requests of {n}: "
                      f"{rate:.1f} images/s")
            client.close()
        finally:
            server.terminate()
            server.wait()
        if args.sweep:
            print(f"\n{'batch':>5s} {'from_seeds ms':>14s} {'per image':>10s} "
                  f"{'serving_default ms':>19s} {'per image':>10s}   (in-process, best of runs)")
            for n, seeds_ms, latent_ms in sweep(model, (1, 2, 4, 8, 16, 32, 64, 128)):
                print(f"{n:5d} {seeds_ms:14.1f} {seeds_ms / n:10.2f} {latent_ms:19.1f} "
                      f"{latent_ms / n:10.2f}")


if __name__ == "__main__":
    main()
