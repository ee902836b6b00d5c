"""Serving under load: ``wgan-tf serve`` with request batching off and on, against closed-loop
clients in processes of their own (as ghz or locust run them), on the paper's 64x64x3 DCGAN
generator (untrained: the weights do not change the arithmetic).

Parts (``--parts``, all by default):
- ``sweep``: throughput and p50/p99 latency for each number of concurrent clients (``--clients``)
  asking ``--images`` images per request, batching off and on (``--batching-config``);
- ``inprocess``: the same ``from_seeds`` signature called in this process in batches of 1, 16 and
  64, back to back: the optimum a server could approach, with no server running;
- ``overload``: ``--overload-clients`` one-image clients against a server with a small queue
  (one batch of 16 waiting, ``--max-concurrent-rpcs`` 64): requests refused and how fast,
  p99 of the accepted, server RSS before and after, and the same image for a seed after as before;
- ``soak``: 16 one-image clients for ``--soak-seconds``, batching on, the server's RSS and thread
  count sampled every few seconds.

Each client (benchmarks/load_client.py) imports grpc only and sends pre-serialized requests on
its own channel; all start together after they have connected, and only requests sent within the
``--seconds`` window count.

    .venv/bin/python benchmarks/serving_load.py [--parts sweep,inprocess,overload,soak] \
        [--clients 1,4,16,64] [--images 1,16] [--seconds 10] [--soak-seconds 180]
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from serving import export_paper_generator, free_port  # benchmarks/serving.py, beside this
from wgan_tf.serving import Client

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFUSALS = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")


def proc_status(pid):
    """(RSS in MiB, threads) of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


class Server:
    """``wgan-tf serve`` in a process of its own, on a free port."""

    def __init__(self, base, *flags):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wgan_tf.cli", "serve", "--model-base-path", str(base),
             "--port", str(self.port), *map(str, flags)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        self.address = f"localhost:{self.port}"
        with Client(self.address, timeout=120) as client:
            client.wait_until_ready(300)

    def image(self, seed):
        with Client(self.address, timeout=120) as client:
            return client.generate(1, seed=seed)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=120)


def request_file(path, images, client, variants=8):
    """Pre-serialized ``from_seeds`` requests of ``images`` seeds each, distinct per client."""
    with open(path, "wb") as f:
        for v in range(variants):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "wgan"
            request.model_spec.signature_name = "from_seeds"
            first = (client * variants + v) * images
            request.inputs["seeds"].CopyFrom(tf.make_tensor_proto(
                np.arange(first, first + images, dtype=np.int64)))
            request.output_filter.append("images")
            data = request.SerializeToString()
            f.write(struct.pack("<I", len(data)) + data)


def load(address, clients, images, seconds, tmp, monitor=None):
    """Runs ``clients`` closed-loop client processes for ``seconds``; returns their records,
    ``[sent, answered, code]`` per request, and the window (start, end)."""
    files = []
    for k in range(clients):
        request_file(tmp / f"requests-{k}.bin", images, k)
        files.append(tmp / f"records-{k}.json")
    # Room for every client process to start and connect (grpc's import costs ~0.3 s of CPU).
    start = time.time() + 3 + 0.3 * clients
    end = start + seconds
    processes = [subprocess.Popen(
        [sys.executable, str(HERE / "load_client.py"), "--address", address,
         "--requests", str(tmp / f"requests-{k}.bin"), "--start", str(start), "--end", str(end),
         "--out", str(files[k])]) for k in range(clients)]
    if monitor is not None:
        monitor(start, end)
    for process in processes:
        if process.wait(timeout=seconds + 600) != 0:
            raise SystemExit(f"a load client exited {process.returncode}")
    records = [r for path in files for r in json.loads(path.read_text())]
    return records, (start, end)


def summary(records, window, images):
    """images/s of the answered requests, p50/p99 ms of those, and the refusals."""
    start, end = window
    inside = [r for r in records if start <= r[0] < end]
    ok = [r for r in inside if r[2] == "OK"]
    refused = [r for r in inside if r[2] in REFUSALS]
    other = [r for r in inside if r[2] != "OK" and r[2] not in REFUSALS]
    ms = np.array([(r[1] - r[0]) * 1e3 for r in ok]) if ok else np.array([np.nan])
    refused_ms = np.array([(r[1] - r[0]) * 1e3 for r in refused]) if refused else np.array([np.nan])
    done = sum(1 for r in ok if r[1] <= end)
    return {"images_per_s": done * images / (end - start), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "requests": len(inside), "ok": len(ok),
            "refused": len(refused), "refused_p99_ms": float(np.percentile(refused_ms, 99)),
            "refused_by": {code: sum(r[2] == code for r in refused) for code in REFUSALS},
            "refusals": sorted({r[2] for r in refused}), "errors": sorted({r[2] for r in other})}


def batching_file(tmp, source, **changes):
    """A copy of the batching config ``source`` with some fields set."""
    text = Path(source).read_text()
    for key, value in changes.items():
        text = re.sub(rf"^{key} \{{ value: \w+ \}}", f"{key} {{ value: {value} }}", text,
                      flags=re.M)
    path = tmp / "batching.config"
    path.write_text(text)
    return path


def sweep(base, args, tmp):
    """Both servers run side by side (the idle one costs nothing), and every load is run on one
    and then the other, so that other work on a shared machine falls on both alike."""
    rows = []
    servers = {"off": Server(base), "on": Server(base, "--enable-batching",
                                                 "--batching-parameters-file",
                                                 args.batching_config)}
    try:
        for images in args.images:
            for clients in args.clients:
                for mode, server in servers.items():
                    records, window = load(server.address, clients, images, args.seconds, tmp)
                    row = {"batching": mode, "clients": clients, "images": images,
                           **summary(records, window, images)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        for server in servers.values():
            server.stop()
    return rows


def inprocess(version_dir, seconds):
    model = tf.saved_model.load(str(version_dir))
    from_seeds = model.signatures["from_seeds"]
    rows = {}
    for batch in (1, 16, 64):
        seeds = tf.range(batch, dtype=tf.int64)
        for _ in range(3):
            from_seeds(seeds=seeds)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            from_seeds(seeds=seeds)
            count += batch
        rows[batch] = count / (time.perf_counter() - start)
        print(json.dumps({"inprocess_batch": batch, "images_per_s": rows[batch]}), flush=True)
    return rows


def overload(base, args, tmp):
    # A small queue: 1 batch of 16 waiting and 2 of 16 running hold fewer requests than the 64
    # RPCs the server admits, so both bounds refuse: the queue (UNAVAILABLE) and the RPC limit
    # (RESOURCE_EXHAUSTED).
    config = batching_file(tmp, args.batching_config, max_enqueued_batches=1,
                           max_execution_batch_size=16)
    server = Server(base, "--enable-batching", "--batching-parameters-file", config,
                    "--max-concurrent-rpcs", 64)
    try:
        before_image = server.image(123456)
        rss_before, threads_before = proc_status(server.process.pid)
        records, window = load(server.address, args.overload_clients, 1, args.seconds, tmp)
        result = summary(records, window, 1)
        time.sleep(2)  # the in-flight requests drain
        rss_after, threads_after = proc_status(server.process.pid)
        same = bool(np.array_equal(server.image(123456), before_image))
        result.update(clients=args.overload_clients, rss_before_mib=rss_before,
                      rss_after_mib=rss_after, threads_before=threads_before,
                      threads_after=threads_after, same_image_after=same)
        print(json.dumps({"overload": result}), flush=True)
        return result
    finally:
        server.stop()


def soak(base, args, tmp):
    server = Server(base, "--enable-batching", "--batching-parameters-file",
                    args.batching_config)
    samples = []

    def monitor(start, end):
        while time.time() < end:
            now = time.time()
            if now >= start:
                samples.append((round(now - start), *proc_status(server.process.pid)))
            time.sleep(max(1.0, args.soak_seconds / 12))
    try:
        records, window = load(server.address, 16, 1, args.soak_seconds, tmp, monitor)
        samples.append((args.soak_seconds, *proc_status(server.process.pid)))
        result = {"summary": summary(records, window, 1), "samples": samples}
        print(json.dumps({"soak": result}), flush=True)
        return result
    finally:
        server.stop()


def print_tables(results):
    rows = results.get("sweep", [])
    if rows:
        print("\n| clients x images | batching | images/s | p50 ms | p99 ms | refused |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for r in sorted(rows, key=lambda r: (r["images"], r["clients"], r["batching"])):
            print(f"| {r['clients']} x {r['images']} | {r['batching']} | "
                  f"{r['images_per_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
                  f"{r['refused']} |")
    optimum = results.get("inprocess", {})
    if optimum:
        print("\n| in-process `from_seeds`, batch | images/s |\n| ---: | ---: |")
        for batch, rate in optimum.items():
            print(f"| {batch} | {rate:.0f} |")

    def find(mode, clients):
        return next((r for r in rows if (r["batching"], r["clients"], r["images"]) ==
                     (mode, clients, 1)), None)
    for clients in (16, 64):
        off, on = find("off", clients), find("on", clients)
        if off and on:
            line = (f"\n{clients} one-image clients: on/off throughput "
                    f"{on['images_per_s'] / off['images_per_s']:.2f}x, p99 on {on['p99_ms']:.0f} "
                    f"ms vs off {off['p99_ms']:.0f} ms")
            if clients == 16 and 16 in optimum:
                line += f"; on / in-process batch 16: {on['images_per_s'] / optimum[16]:.0%}"
            print(line)
    if "overload" in results:
        o = results["overload"]
        print(f"\noverload, {o['clients']} clients: {o['requests']} requests, {o['ok']} answered "
              f"(p99 {o['p99_ms']:.0f} ms), {o['refused']} refused {o['refused_by']} (p99 "
              f"{o['refused_p99_ms']:.1f} ms), other errors {o['errors']}; server RSS "
              f"{o['rss_before_mib']:.0f} -> {o['rss_after_mib']:.0f} MiB, threads "
              f"{o['threads_before']} -> {o['threads_after']}; same image after: "
              f"{o['same_image_after']}")
    if "soak" in results:
        s = results["soak"]
        print(f"\nsoak: {s['summary']['images_per_s']:.0f} images/s, p99 "
              f"{s['summary']['p99_ms']:.0f} ms; (seconds, RSS MiB, threads): "
              + ", ".join(f"({t}, {rss:.0f}, {n})" for t, rss, n in s["samples"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--parts", default="sweep,inprocess,overload,soak")
    parser.add_argument("--clients", type=ints, default=[1, 4, 16, 64])
    parser.add_argument("--images", type=ints, default=[1, 16])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measured window of each load (default: %(default)s)")
    parser.add_argument("--overload-clients", type=int, default=128)
    parser.add_argument("--soak-seconds", type=float, default=180.0)
    parser.add_argument("--batching-config", default=str(ROOT / "serving" / "batching.config"))
    parser.add_argument("--image-size", type=int, default=64,
                        help="the generator's image size (default: the paper's %(default)s)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    parts = args.parts.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        version_dir = export_paper_generator(tmp, args.image_size)
        base = version_dir.parent
        if "sweep" in parts:
            results["sweep"] = sweep(base, args, tmp)
        if "inprocess" in parts:
            results["inprocess"] = inprocess(version_dir, args.seconds)
        if "overload" in parts:
            results["overload"] = overload(base, args, tmp)
        if "soak" in parts:
            results["soak"] = soak(base, args, tmp)
    print_tables(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
