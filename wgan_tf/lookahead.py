"""Lookahead for both players of a GAN ("Lookahead Optimizer: k steps forward, 1 step back", Zhang
et al. 2019; for the two players of a game, "Taming GANs with Lookahead-Minmax", Chavdarova et al.
2021): every ``every`` generator iterations each trained weight ``w`` of the critic and the
generator is pulled back towards a slow copy ``s`` of itself,

    s <- s + alpha * (w - s),    w <- s        (alpha = ALPHA, 0.5)

and training goes on from there; the optimizers' states are kept. Between synchronisations the
players train as they would without it. The pull-back averages the last ``every`` iterations'
movement, which damps the rotation of two players chasing each other (Chavdarova et al., Sec. 3).
Measured here (docs/RESULTS.md, "Lookahead and annealing: ending a long run"): switched on for
the last 2,000 of the flowers model's 20,000 iterations it lowered the raw generator's FD
through that stretch; from the first iteration of the fast recipe it slowed the start (a collapse
at 1,020 iterations, recovered by 1,530). So it is off by default and in every recipe, and may be
switched on when a run resumes.

The slow copies are float32 variables beside the networks (``Lookahead.variables_by_name``),
saved in every checkpoint, so a resumed run is the same run. Switched on when a run trained
without it resumes (``--lookahead K`` given then, recorded in config.json from then on), its slow
copies start from the weights restored (``start``; the checkpoint records where); switching it off, or to another period, is
refused like any other change of a run's settings. The synchronisation runs in cross-replica
context after the replicas' step, like the generator EMA (``GenerativeModel.after_step``): every
replica and every worker holds the same weights, so the same slow copies. Batch-norm moving
statistics are not trained weights and are left as they are.
"""
import tensorflow as tf

ALPHA = 0.5


class Lookahead(tf.Module):
    """Slow copies of ``networks``' trained weights, synchronised every ``every`` iterations."""

    def __init__(self, networks, every, alpha=ALPHA):
        super().__init__(name="lookahead")
        if every < 1:
            raise ValueError(f"lookahead period must be >= 1, got {every}")
        self.every = int(every)
        self.alpha = float(alpha)
        self.fast = [w for network in networks for w in network.trainable_weights]
        self.slow = [tf.Variable(w.value, trainable=False, name=f"slow_{i}")
                     for i, w in enumerate(self.fast)]
        # The iteration the slow copies started from; -1 until ``start`` (a checkpoint of a run
        # trained without Lookahead has none, so it stays -1 when such a run resumes with it).
        self.started_at = tf.Variable(tf.constant(-1, tf.int64), trainable=False,
                                      name="started_at")

    def variables_by_name(self):
        """{name: variable}: what a checkpoint holds."""
        slow = {f"lookahead_{i}": slow for i, slow in enumerate(self.slow)}
        return {**slow, "lookahead_started_at": self.started_at}

    def start(self, iteration):
        """After the run's checkpoint is restored: where the slow copies hold no restored
        values, they start from the weights (Lookahead switched on in a run that had none) at
        ``iteration``. Returns whether they did."""
        if int(self.started_at.numpy()) >= 0:
            return False
        for slow, fast in zip(self.slow, self.fast):
            slow.assign(fast.value)
        self.started_at.assign(iteration)
        return True

    def _sync(self):
        for slow, fast in zip(self.slow, self.fast):
            slow.assign_add(self.alpha * (fast.value - slow))
            fast.assign(slow)
        return tf.constant(True)

    def after(self, iterations):
        """Synchronise when ``iterations`` (the generator iterations made, a tensor) is a multiple
        of the period; an op in the training step's graph."""
        return tf.cond(tf.equal(iterations % self.every, 0), self._sync,
                       lambda: tf.constant(False))
