"""Losses as pure functions of critic scores, one value per sample.

Per-sample values let the training step average over the *global* batch (summing on each replica and
dividing by the global batch size), which is what makes several replicas compute the same step as one.
"""
import tensorflow as tf


def wasserstein_critic_loss(real_scores, fake_scores):
    """WGAN critic loss, f(fake) - f(real) per sample (Arjovsky et al. 2017, Algorithm 1 line 5, negated
    because optimizers minimise). Its negative mean is the critic's estimate of W(P_r, P_g), up to the
    Lipschitz constant."""
    return tf.reshape(fake_scores - real_scores, [-1])


def wasserstein_generator_loss(fake_scores):
    """WGAN generator loss, -f(G(z)) per sample (Algorithm 1 line 10)."""
    return -tf.reshape(fake_scores, [-1])


def gan_discriminator_loss(real_logits, fake_logits):
    """Standard GAN discriminator loss per sample, -log D(x) - log(1 - D(G(z))) with D = sigmoid of
    the logit (Goodfellow et al. 2014), in the numerically stable softplus form."""
    return tf.reshape(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits), [-1])


def gan_generator_loss(fake_logits):
    """The -log D(G(z)) generator loss per sample (Goodfellow et al. 2014's non-saturating trick,
    the WGAN paper's baseline)."""
    return tf.reshape(tf.nn.softplus(-fake_logits), [-1])


def class_cross_entropy(logits, labels):
    """The auxiliary classifier's loss per sample, -log softmax(logits)[label] (AC-GAN, Odena et
    al. 2017; the WGAN-GP paper's conditional model adds it to both players' losses)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(tf.reshape(labels, [-1]), tf.int32), logits=tf.cast(logits, tf.float32))


# --- Wasserstein auto-encoders (Tolstikhin, Bousquet, Gelly, Schoelkopf, ICLR 2018) --------------

# The official code's weight on the squared L2 cost (wae.py, reconstruction_loss, cost 'l2sq'); its
# lambda values assume it.
RECONSTRUCTION_SCALE = 0.05
# The official IMQ kernel is summed over these multiples of its base scale C = 2 d_z sigma_z^2
# (wae.py, mmd_penalty); the paper states the single C.
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def reconstruction_cost(real, reconstructed):
    """WAE's cost c(x, G(Q(x))) per sample: the squared L2 distance summed over pixels, times 0.05
    (the official code's 'l2sq' cost; its mean over the batch is the objective's first term)."""
    squared = tf.square(tf.cast(real, tf.float32) - tf.cast(reconstructed, tf.float32))
    return RECONSTRUCTION_SCALE * tf.reduce_sum(tf.reshape(squared, [tf.shape(squared)[0], -1]),
                                                axis=1)


def _squared_distances(a, b):
    """||a_i - b_j||^2 ``[n, m]``, expanded as the official code does (norms and dot products)."""
    norms_a = tf.reduce_sum(tf.square(a), axis=1, keepdims=True)
    norms_b = tf.reduce_sum(tf.square(b), axis=1, keepdims=True)
    return norms_a + tf.transpose(norms_b) - 2.0 * tf.matmul(a, b, transpose_b=True)


def imq_mmd(qz, pz, sigma_z=1.0):
    """WAE-MMD's penalty: the unbiased estimate of MMD^2(Q_Z, P_Z) between codes ``qz`` and prior
    samples ``pz`` (both ``[n, d_z]``) with the inverse multiquadratics kernel
    k(x, y) = C / (C + ||x - y||^2), summed over C = 2 d_z sigma_z^2 * s for s in ``IMQ_SCALES``
    (Tolstikhin et al. 2018, Algorithm 2; ``mmd_penalty`` with kernel 'IMQ' in tolstikhin/wae):

        sum_{i != j} [k(q_i, q_j) + k(p_i, p_j)] / (n (n - 1))  -  2 sum_{i, j} k(q_i, p_j) / n^2

    A scalar over the whole sample, not a per-sample value; it can be negative (it is unbiased),
    and is not clipped. Under several replicas it must see the *global* batch of codes
    (``wgan_tf.replicas.gather_rows``): MMD over a replica's rows alone is another quantity.
    """
    qz, pz = tf.cast(qz, tf.float32), tf.cast(pz, tf.float32)
    n = tf.shape(qz)[0]
    nf = tf.cast(n, tf.float32)
    off_diagonal = 1.0 - tf.eye(n)
    d_qq, d_pp, d_qp = _squared_distances(qz, qz), _squared_distances(pz, pz), \
        _squared_distances(qz, pz)
    base = 2.0 * tf.cast(tf.shape(qz)[1], tf.float32) * sigma_z ** 2
    total = tf.constant(0.0)
    for scale in IMQ_SCALES:
        c = base * scale
        within = tf.reduce_sum((c / (c + d_qq) + c / (c + d_pp)) * off_diagonal) / (nf * nf - nf)
        cross = 2.0 * tf.reduce_sum(c / (c + d_qp)) / (nf * nf)
        total += within - cross
    return total


def gaussian_kl(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) per sample: the VAE's regulariser (Kingma and
    Welling 2014, Appendix B)."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_variance) - log_variance - 1.0, axis=1)


def gan_minimax_generator_loss(fake_logits):
    """The original minimax generator loss log(1 - D(G(z))) per sample (Goodfellow et al. 2014),
    -softplus(logit): the loss whose gradient vanishes once the discriminator is confident (the
    WGAN paper's Fig. 2 and Section 3). The baseline trains with ``gan_generator_loss`` instead."""
    return -tf.reshape(tf.nn.softplus(fake_logits), [-1])
