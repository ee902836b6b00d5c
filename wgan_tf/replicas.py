"""What lets several replicas compute the step of one device on the same global batch.

Inside ``strategy.run`` each replica holds its own rows of the global batch. Averaging a loss over
those rows alone would weight every replica's gradient as a whole batch's; dividing the sum by the
*global* batch size instead makes the gradients that the optimizer's all-reduce sums the gradient
of the global mean. Prior samples are drawn for the global batch (outside the replica step) and each
replica keeps its own rows, so no two replicas share a latent vector and the numbers do not depend
on the replica count. These work on one device too (one replica in sync), and across the workers of
a MultiWorkerMirroredStrategy, where replica ids are global.
"""
import tensorflow as tf


def _context():
    return tf.distribute.get_replica_context()


def global_mean(per_sample):
    """This replica's share of the mean over the global batch; the shares sum to the mean."""
    global_batch = tf.shape(per_sample)[0] * _context().num_replicas_in_sync
    return tf.reduce_sum(per_sample) / tf.cast(global_batch, per_sample.dtype)


def sum_over_replicas(value):
    """The sum of ``value`` over replicas (for metrics built from ``global_mean`` shares)."""
    return _context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def replica_rows(sample):
    """This replica's rows of a sample drawn for the global batch (replicas split it in order, as
    the distributed dataset splits the real batch)."""
    ctx = _context()
    local_batch = tf.shape(sample)[0] // ctx.num_replicas_in_sync
    start = ctx.replica_id_in_sync_group * local_batch
    return sample[start:start + local_batch]


def gather_rows(local):
    """The global batch from every replica's rows, in replica order (the inverse of
    ``replica_rows``).

    Each replica puts its rows in their place among zeros and the replicas sum: an all-reduce,
    not ``ReplicaContext.all_gather``, which always goes through ``merge_call`` (so it fails inside
    the XLA-compiled per-replica step used on several GPUs) and has no XLA kernel. Adding zeros
    is exact. Differentiable (the all-reduce's gradient is the all-reduce of the gradients, then
    this replica's slice): each replica gets back, for its own rows, the gradient of the *sum of
    every replica's loss*. So a statistic of the gathered global batch, which every replica
    computes in full, enters each replica's loss as ``replica_share(value)``; the optimizer's
    all-reduce then sums the shares' gradients to the statistic's gradient
    (tests/test_autoencoders.py checks this against one device)."""
    ctx = _context()
    replicas = ctx.num_replicas_in_sync
    if replicas == 1:
        return local
    rows = tf.shape(local)[0]
    before = ctx.replica_id_in_sync_group * rows
    padding = [[before, (replicas - 1) * rows - before]] + [[0, 0]] * (local.shape.rank - 1)
    return sum_over_replicas(tf.pad(local, padding))


def replica_share(value):
    """This replica's share of a value every replica computes in full over the global batch (a
    statistic of ``gather_rows``): the shares sum to the value, as ``global_mean`` shares do."""
    return value / tf.cast(_context().num_replicas_in_sync, value.dtype)
