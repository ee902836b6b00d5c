"""Training throughput on one process and on local multi-worker jobs, and what a generator
iteration sends between workers, so that the cost across machines can be estimated.

For each worker count K in ``--workers``, K fresh processes train the paper's setting (DCGAN 64x64x3,
batch 64, n_critic 5, weight clipping, RMSProp; steady state, without the critic boost) on a batch
already in memory, so that only the training step and its communication are timed: K = 1 is one
process with no strategy (what ``wgan-tf train`` runs on one CPU); K > 1 is K workers on localhost
with ``TF_CONFIG``, each one CPU device, under MultiWorkerMirroredStrategy (RING all-reduce over
gRPC), the global batch split over them.

The communication is read off the step TensorFlow actually traced on a worker of a K > 1 job: every
collective op in it (and in the functions it calls), with the bytes of its input. They are sorted
by what they carry: gradients (the optimizers' all-reduce, one per variable), batch-norm
synchronisations (each synchronized batch-norm layer all-reduces its sums and count in the forward
pass, and their gradients in the backward pass), and the all-reduced metrics. The gradients' share
is checked against the parameter count: 4 bytes x (n_critic x critic + generator parameters). A ring all-reduce of B bytes over
K workers sends and receives 2 B (K - 1) / K bytes per worker.

    python benchmarks/multi_worker.py [--workers 1 2] [--iterations 10] [--image-size 64]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

ROLE = "WGAN_TF_BENCHMARK_WORKER"


def worker(args):
    """One process of a measurement: train, time, count collectives; print a JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from wgan_tf import distribute  # the strategy before any TensorFlow op

    job = distribute.Job.start(1)
    import keras
    import tensorflow as tf

    from wgan_tf import models
    from wgan_tf.wgan import WGAN

    strategy = job.strategy
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator, critic = models.build_pair("dcgan", args.image_size, 3)
        model = WGAN(generator, critic, n_critic=args.n_critic, critic_boost=False)
        model.compile(jit_compile=False)
    images = tf.random.stateless_uniform([args.batch_size, args.image_size, args.image_size, 3],
                                         [0, 0], -1, 1)
    dataset = distribute.split_batches(
        strategy,
        lambda rows: tf.data.Dataset.from_tensors(images[slice(*rows) if rows else slice(None)])
        .repeat(), args.batch_size)
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # trace, warm up
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=args.iterations, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    result = {"workers": job.workers, "chief": job.chief,
              "generator_iterations_per_s": args.iterations / seconds,
              "generator_parameters": int(sum(v.numpy().size for v in generator.trainable_weights)),
              "critic_parameters": int(sum(v.numpy().size for v in critic.trainable_weights))}
    if job.workers > 1:
        step = model.make_train_function().step
        batch_norm = {layer.name for network in (generator, critic) for layer in network.layers
                      if isinstance(layer, keras.layers.BatchNormalization)}
        traced = step.get_concrete_function(iter(dataset), model.step_schedule())
        result["collectives"] = collectives(traced.graph, batch_norm)
        result["gradient_bytes_expected"] = 4 * (args.n_critic * result["critic_parameters"]
                                                 + result["generator_parameters"])
    print(json.dumps(result), flush=True)


def collectives(graph, batch_norm_layers):
    """{kind: {"ops": n, "bytes": b}} over the collective ops of ``graph`` and of every function
    it calls, each call counted, sorted by what they carry (``kind``)."""
    found = collections.defaultdict(lambda: {"ops": 0, "bytes": 0})

    def walk(graph, scope):
        for op in graph.get_operations():
            if op.type.startswith("Collective") and op.inputs:
                value = op.inputs[0]
                elements = value.shape.num_elements() or 0
                what = found[kind(scope + op.name.split("/")[:-1], elements, batch_norm_layers)]
                what["ops"] += 1
                what["bytes"] += elements * value.dtype.size
            for attribute in ("f", "then_branch", "else_branch", "body", "cond"):
                try:
                    function = op.get_attr(attribute)
                except (ValueError, TypeError):
                    continue
                walk(graph._get_function(function.name).graph, scope + op.name.split("/"))

    walk(graph, [])
    return dict(found)


def kind(scope, elements, batch_norm_layers):
    """What a collective op carries, from the name scopes it was made in: a batch-norm layer's
    (its forward pass), an optimizer's (the gradients), or the replica step's own: the gradient of
    a batch-norm synchronisation, or a metric (a scalar)."""
    scope = [part.rsplit("_", 1)[0] if part.rsplit("_", 1)[-1].isdigit() else part
             for part in scope if not part.startswith("StatefulPartitionedCall")]
    if set(scope) & batch_norm_layers:
        return "batch-norm synchronisations, forward"
    if scope:
        return "gradients"
    return "metrics" if elements == 1 else "batch-norm synchronisations, backward"


def measure(workers, argv, timeout):
    """Runs ``workers`` processes of this script; returns the chief's result."""
    from wgan_tf.distribute import local_cluster

    processes = []
    for tf_config in local_cluster(workers) if workers > 1 else [None]:
        env = dict(os.environ, **{ROLE: "1"})
        env.pop("TF_CONFIG", None)
        if tf_config:
            env["TF_CONFIG"] = tf_config
        processes.append(subprocess.Popen([sys.executable, __file__, *argv], env=env,
                                          stdout=subprocess.PIPE, text=True,
                                          start_new_session=True))
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    if any(p.returncode for p in processes):
        raise SystemExit(f"{workers} worker(s): exit statuses {[p.returncode for p in processes]}")
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    return next(r for r in results if r["chief"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if os.environ.get(ROLE):
        return worker(args)
    argv = sys.argv[1:]
    report = {"load_average_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    for workers in args.workers:
        report[f"{workers}_workers"] = measure(workers, argv, args.timeout)
    report["load_average_after"] = os.getloadavg()[0]
    for result in report.values():
        if isinstance(result, dict) and "collectives" in result:
            k = result["workers"]
            total = sum(c["bytes"] for c in result["collectives"].values())
            result["all_reduced_bytes_per_iteration"] = total
            result["ring_bytes_sent_per_worker_per_iteration"] = 2 * total * (k - 1) / k
    print(json.dumps(report, indent=2))
    # The gradients all-reduced must be exactly the parameters updated (docs/BENCHMARKS.md).
    wrong = [f"{r['workers']} workers: {r['collectives']['gradients']['bytes']} gradient bytes "
             f"all-reduced, {r['gradient_bytes_expected']} expected"
             for r in report.values() if isinstance(r, dict) and "collectives" in r
             and r["collectives"]["gradients"]["bytes"] != r["gradient_bytes_expected"]]
    if wrong:
        sys.exit("multi_worker.py: " + "; ".join(wrong))


if __name__ == "__main__":
    main()
