"""Sample-quality measures for generators, as pure functions over sample arrays.

Points are float arrays ``[N, 2]``; images are float arrays ``[N, H, W, C]`` in [-1, 1], as the
generator and ``wgan_tf.data.load`` give them. Results that belong together come back as dicts
keyed by the names ``wgan-tf evaluate`` writes to its JSON file.

- Toy data: ``w1_exact`` (the distance the WGAN critic estimates, computed exactly) and
  ``mode_stats`` (modes covered, share of high-quality samples).
- Any images: ``sliced_wasserstein`` over Laplacian-pyramid patches (Karras et al. 2018).
- ``digits``: ``classifier_fd`` and ``mode_coverage`` with ``digits_classifier``, a small network
  the package trains on the real digits, so nothing is downloaded; a labelled photo folder
  (``folder:PATH`` with class subfolders) gets its own, ``folder_classifier``. Their distances
  compare runs on the same data; they are not comparable with published FIDs.
- ``fid`` with InceptionV3, only from a weights file the user gives by path, and with the full
  weights ``inception_score``.
- In any features: ``frechet_distance`` and ``kernel_inception_distance`` (KID, unbiased).
"""
import functools
import hashlib
import json
import os

import keras
import numpy as np
import tensorflow as tf
from scipy import linalg, ndimage, optimize
from scipy.spatial.distance import cdist

from wgan_tf.data import builtin
from wgan_tf.errors import ConfigError


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets ``[N, D]``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Dowson & Landau 1982; the FID of
    Heusel et al. 2017 is this on Inception features).

    ``tr (S_a S_b)^(1/2)`` is computed as ``tr (R S_b R)^(1/2)`` with ``R = S_a^(1/2)``: the same
    eigenvalues, but of a symmetric matrix, so two ``eigh`` calls replace ``scipy.linalg.sqrtm`` of
    a non-symmetric product (36 s against about 2 s for D = 2048 on two CPU cores, and no complex
    round-off to discard).
    """
    a, b = (np.asarray(f, np.float64) for f in (features_a, features_b))
    mean_term = np.sum((a.mean(0) - b.mean(0)) ** 2)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sum(np.sqrt(np.clip(linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)))
    # Never below zero in exact arithmetic; identical sets round to about -1e-12.
    return max(float(mean_term + np.trace(cov_a) + np.trace(cov_b) - 2 * cross), 0.0)


KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def kernel_inception_distance(features_a, features_b, subsets=KID_SUBSETS,
                              subset_size=KID_SUBSET_SIZE, seed=0):
    """KID (Binkowski, Sutherland, Arbel, Gretton 2018): the unbiased estimate of MMD^2 between two
    feature sets ``[N, D]`` with the cubic polynomial kernel k(x, y) = (x . y / D + 1)^3, averaged
    over ``subsets`` random subsets of ``min(subset_size, N_a, N_b)`` rows of each set (drawn
    without replacement under ``seed``), as the reference code and torch-fidelity compute it:

        sum_{i != j} [k(a_i, a_j) + k(b_i, b_j)] / (m (m - 1))  -  2 sum_{i, j} k(a_i, b_j) / m^2

    Unlike the Fréchet distance it is unbiased, so small sample counts do not inflate it; it can
    be slightly negative. Returns ``(mean, standard deviation over the subsets)``.
    """
    a, b = (np.asarray(f, np.float64) for f in (features_a, features_b))
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    dim = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = ((p @ q.T / dim + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values.append(within - 2.0 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values))


def inception_score(probabilities, splits=10):
    """Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) from class
    probabilities ``[N, classes]``, computed on ``splits`` equal parts as the reference code does.
    Returns ``(mean, standard deviation over the splits)``."""
    p = np.asarray(probabilities, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# --- toy data -------------------------------------------------------------------------------------

def w1_exact(points_a, points_b):
    """Exact Wasserstein-1 distance between two equal-size point sets (uniform weights) with
    Euclidean ground cost: the quantity the WGAN critic estimates (Arjovsky et al. 2017, Eq. 1).

    Between two uniform measures on N points each, some optimal transport plan is a permutation
    (Birkhoff-von Neumann), so the optimal assignment (``linear_sum_assignment``) is exact.
    O(N^3) time and an N x N cost matrix: a few seconds for N = 2000.
    """
    a, b = np.asarray(points_a, np.float64), np.asarray(points_b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"w1_exact needs two sets of the same shape, got {a.shape}, {b.shape}")
    cost = cdist(a, b)
    rows, cols = optimize.linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def toy_modes(name):
    """(centres ``[K, 2]``, standard deviation) of a Gaussian-mixture toy dataset, as
    ``wgan_tf.data`` draws it."""
    return builtin.gaussian_mixture(name)


def mode_stats(points, centers, std, min_share=0.2):
    """Mode collapse on a Gaussian mixture (``centers`` and ``std`` from ``toy_modes``):

    - ``high_quality``: share of samples within 3 standard deviations of their nearest centre,
      VEEGAN's definition (Srivastava et al. 2017). Real data scores about 0.989 (the mass of a
      2-D Gaussian within 3 sigma), not 1.
    - ``modes_covered`` (of ``num_modes``): centres that receive at least ``min_share`` of the
      high-quality samples a perfect generator would give them (N / K). This package's rule: "at
      least one sample" would count a collapsed generator's stray points as coverage, while 0.2 of
      the fair share tolerates sampling noise (2000 real points on 25 modes give every mode
      79 +- 9) and still flags a mode the generator visits rarely.
    """
    points, centers = np.asarray(points, np.float64), np.asarray(centers, np.float64)
    distances = cdist(points, centers)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(points)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    return {"modes_covered": int(_covered(counts, len(points), min_share).sum()),
            "num_modes": len(centers),
            "high_quality": float(good.mean())}


def _covered(counts, num_samples, min_share):
    """Which of ``len(counts)`` modes got at least ``min_share`` of their fair share of samples."""
    return counts >= max(1.0, min_share * num_samples / len(counts))


# --- sliced Wasserstein distance over Laplacian pyramids -----------------------------------------

# The reference implementation's settings (tkarras/progressive_growing_of_gans,
# metrics/sliced_wasserstein.py): 7x7 neighbourhoods, 128 per image, 4 x 128 directions.
SWD_PATCH = 7
SWD_PATCHES_PER_IMAGE = 128
SWD_REPEATS = 4
SWD_DIRECTIONS = 128
_BINOMIAL_5X5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])[None, None].astype(np.float32) / 256.0


def _pyramid_down(images):
    # cv2.pyrDown: blur with the 5x5 binomial kernel, keep every second pixel.
    return ndimage.convolve(images, _BINOMIAL_5X5, mode="mirror")[:, :, ::2, ::2]


def _pyramid_up(images):
    n, c, h, w = images.shape
    up = np.zeros((n, c, 2 * h, 2 * w), images.dtype)
    up[:, :, ::2, ::2] = images
    return ndimage.convolve(up, 4.0 * _BINOMIAL_5X5, mode="mirror")


def laplacian_pyramid(images, levels):
    """``levels`` band-pass images ``[N, C, H / 2^i, W / 2^i]``, finest first; the last level is
    the remaining low-pass image (Burt & Adelson 1983)."""
    pyramid = [np.asarray(images, np.float32)]
    for _ in range(levels - 1):
        pyramid.append(_pyramid_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _pyramid_up(pyramid[-1])
    return pyramid


def _descriptors(level, per_image, seed):
    """Random 7x7 neighbourhoods of one pyramid level as rows ``[N * per_image, C * 49]``, each
    channel standardised over the whole set (as the reference does, per set)."""
    n, c, h, w = level.shape
    r = SWD_PATCH // 2
    rng = np.random.default_rng(seed)
    ys = rng.integers(r, h - r, size=n * per_image)[:, None] + np.arange(-r, r + 1)
    xs = rng.integers(r, w - r, size=n * per_image)[:, None] + np.arange(-r, r + 1)
    image = np.repeat(np.arange(n), per_image)
    patches = level[image[:, None, None, None], np.arange(c)[None, :, None, None],
                    ys[:, None, :, None], xs[:, None, None, :]]
    patches -= patches.mean(axis=(0, 2, 3), keepdims=True)
    patches /= patches.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return patches.reshape(len(patches), -1)


def _sliced_w1(a, b, rng):
    """Mean over random unit directions of the exact 1-D W1 between the projections (sorted)."""
    distances = []
    for _ in range(SWD_REPEATS):
        directions = rng.standard_normal((SWD_DIRECTIONS, a.shape[1])).astype(np.float32)
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        # [directions, patches]: each row sorts in contiguous memory (5x faster than columns).
        projected_a, projected_b = (np.sort(directions @ x.T, axis=1) for x in (a, b))
        distances.append(np.mean(np.abs(projected_a - projected_b)))
    return float(np.mean(distances))


def sliced_wasserstein(images_a, images_b, seed=0, patches_per_image=SWD_PATCHES_PER_IMAGE):
    """Sliced Wasserstein distance between two equal-size image sets, per Laplacian-pyramid level,
    as in Progressive GAN (Karras et al. 2018, Sec. 5 and App. D; reference code
    ``metrics/sliced_wasserstein.py``).

    Levels run from the full resolution down to 16x16. At each, 7x7 neighbourhoods are drawn at
    random, standardised per channel within each set, projected on 4 x 128 random unit directions,
    and the sorted projections compared. Values are multiplied by 1e3, as the paper's tables are.
    Both sets use the same patch positions under ``seed`` (so identical sets give exactly 0) and
    the same directions.

    Returns ``{"sliced_wasserstein": mean over levels, "sliced_wasserstein_levels":
    {"64": ..., "32": ..., "16": ...}}`` (keys are the level's resolution).
    """
    if np.shape(images_a) != np.shape(images_b):
        raise ValueError("sliced_wasserstein needs two sets of the same shape, got "
                         f"{np.shape(images_a)} and {np.shape(images_b)}")
    # [N, C, H, W], as the reference code indexes them.
    a, b = (np.transpose(np.asarray(x, np.float32), (0, 3, 1, 2)) for x in (images_a, images_b))
    resolutions = []
    size = a.shape[2]
    while size >= 16:
        resolutions.append(size)
        size //= 2
    if not resolutions:
        raise ValueError(f"sliced_wasserstein needs images of at least 16x16, got {a.shape[2]}")
    pyramids = laplacian_pyramid(a, len(resolutions)), laplacian_pyramid(b, len(resolutions))
    rng = np.random.default_rng(seed)
    levels = {}
    for i, resolution in enumerate(resolutions):
        descriptors = [_descriptors(pyramid[i], patches_per_image, (seed, i))
                       for pyramid in pyramids]
        levels[str(resolution)] = 1e3 * _sliced_w1(*descriptors, rng)
    return {"sliced_wasserstein": float(np.mean(list(levels.values()))),
            "sliced_wasserstein_levels": levels}


# --- digits: a classifier trained by the package --------------------------------------------------

# Part of the cache file name: change it whenever the classifier or its training changes.
CLASSIFIER_VERSION = 1
CLASSIFIER_SEED = 0
CLASSIFIER_EPOCHS = 20


def default_cache_dir():
    """``$XDG_CACHE_HOME/wgan-tf``, else ``~/.cache/wgan-tf``."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                        "wgan-tf")


def _classifier_network(image_size, channels):
    """Stride-2 3x3 convolutions down to 4x4, a 64-unit ``features`` layer, 10 softmax outputs.
    Seeded initialisers instead of ``keras.utils.set_random_seed``: no global state changes."""
    inputs = keras.Input((image_size, image_size, channels), name="images")
    x, size, width, layer = inputs, image_size, 16, 0
    while size > 4:
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=keras.initializers.GlorotUniform(
                                    CLASSIFIER_SEED + layer))(x)
        size, width, layer = size // 2, min(2 * width, 64), layer + 1
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(64, activation="relu", name="features",
                                  kernel_initializer=keras.initializers.GlorotUniform(
                                      CLASSIFIER_SEED + layer))(x)
    probabilities = keras.layers.Dense(10, activation="softmax", name="probabilities",
                                       kernel_initializer=keras.initializers.GlorotUniform(
                                           CLASSIFIER_SEED + layer + 1))(features)
    return inputs, features, probabilities


def train_digits_classifier(image_size=64, channels=3):
    """Trains the digits classifier on ``digits:train`` (``digits:test``, every fifth digit, is
    held out), deterministically: seeded initialisers and a seeded shuffle. Returns a model
    ``images -> [features, probabilities]``."""
    from wgan_tf.data import builtin

    images, labels = builtin.digits_array(image_size, channels, split="train")
    images = builtin.scale_to_unit(images).numpy()
    inputs, features, probabilities = _classifier_network(image_size, channels)
    classifier = keras.Model(inputs, probabilities)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss="sparse_categorical_crossentropy")
    batches = (tf.data.Dataset.from_tensor_slices((images, labels))
               .shuffle(len(images), seed=CLASSIFIER_SEED).batch(32))
    classifier.fit(batches, epochs=CLASSIFIER_EPOCHS, shuffle=False, verbose=0)
    return keras.Model(inputs, [features, probabilities], name="digits_classifier")


@functools.lru_cache(maxsize=8)
def digits_classifier(image_size=64, channels=3, cache_dir=None):
    """The digits classifier for this image shape, ``images in [-1, 1] -> [features [N, 64],
    class probabilities [N, 10]]``: loaded from ``cache_dir`` (default ``default_cache_dir()``),
    or trained (tens of seconds on a CPU) and stored there first."""
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, f"digits-classifier-v{CLASSIFIER_VERSION}-"
                                   f"{image_size}x{image_size}x{channels}.keras")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        partial = f"{path}.{os.getpid()}.keras"  # other processes may be training it too
        train_digits_classifier(image_size, channels).save(partial)
        os.replace(partial, path)
    return keras.saving.load_model(path, compile=False)


def classifier_fd(real_images, fake_images, classifier):
    """Fréchet distance between real and generated images in the ``features`` layer of the
    ``digits_classifier``: FID's construction (Heusel et al. 2017) with a network that fits the
    data and needs no download."""
    real_features = classifier.predict(real_images, batch_size=256, verbose=0)[0]
    fake_features = classifier.predict(fake_images, batch_size=256, verbose=0)[0]
    return frechet_distance(real_features, fake_features)


def mode_coverage(fake_images, classifier, confidence=0.9, min_share=0.2):
    """Which digit classes a generator makes, in the manner of the stacked-MNIST mode counts
    (Metz et al. 2017), with the ``digits_classifier`` as judge.

    Only confident predictions (top probability >= ``confidence``) count; a class is covered with
    at least ``min_share`` of its fair share (N / 10) of them, the rule of ``mode_stats``.
    Returns ``{"mode_coverage": covered classes / 10, "class_histogram": confident predictions per
    class, "confident": share of confident predictions}``.
    """
    probabilities = classifier.predict(fake_images, batch_size=256, verbose=0)[1]
    confident = probabilities.max(axis=1) >= confidence
    counts = np.bincount(probabilities.argmax(axis=1)[confident], minlength=10)
    return {"mode_coverage": float(_covered(counts, len(probabilities), min_share).mean()),
            "class_histogram": counts.tolist(), "confident": float(confident.mean())}


# --- labelled photo folders: a classifier trained on the folder's own labels ---------------------

# Part of the cache file name: change it whenever the classifier or its training changes.
PHOTO_CLASSIFIER_VERSION = 1
PHOTO_CLASSIFIER_EPOCHS = 30
PHOTO_FEATURES = 128
# Every fifth image (in the folder's sorted order) is held out, to report the accuracy.
PHOTO_HELD_OUT_EVERY = 5


def _photo_classifier_network(image_size, channels, classes):
    """Two 3x3 convolutions per resolution (the second of stride 2) down to 4x4, widths 32 to 256,
    global average pooling, a ``features`` layer of 128 and a softmax: a small VGG-like network
    that trains on a CPU in minutes."""
    seeds = iter(range(CLASSIFIER_SEED, CLASSIFIER_SEED + 100))

    def init():
        return keras.initializers.GlorotUniform(next(seeds))

    inputs = keras.Input((image_size, image_size, channels), name="images")
    x, size, width = inputs, image_size, 32
    while size > 4:
        for stride in (1, 2):
            x = keras.layers.Conv2D(width, 3, strides=stride, padding="same", activation="relu",
                                    kernel_initializer=init())(x)
        size, width = size // 2, min(2 * width, 256)
    x = keras.layers.GlobalAveragePooling2D()(x)
    features = keras.layers.Dense(PHOTO_FEATURES, activation="relu", name="features",
                                  kernel_initializer=init())(x)
    probabilities = keras.layers.Dense(classes, activation="softmax", name="probabilities",
                                       kernel_initializer=init())(features)
    return inputs, features, probabilities


def train_folder_classifier(root, image_size=64, channels=3):
    """Trains a classifier of a labelled folder's classes (``wgan_tf.data.folder_source``) on four
    fifths of its images and their mirror images, deterministically. Returns (a model ``images ->
    [features, probabilities]``, ``{"accuracy": held-out accuracy, "classes": names, ...}``)."""
    from wgan_tf.data import folder_source

    images, labels, class_names = folder_source.labelled_images(root, image_size, channels)
    images = builtin.scale_to_unit(images).numpy()
    held_out = np.arange(len(images)) % PHOTO_HELD_OUT_EVERY == PHOTO_HELD_OUT_EVERY - 1
    train_images = np.concatenate([images[~held_out], images[~held_out, :, ::-1]])
    train_labels = np.concatenate([labels[~held_out]] * 2)
    inputs, features, probabilities = _photo_classifier_network(image_size, channels,
                                                                len(class_names))
    classifier = keras.Model(inputs, probabilities)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = (tf.data.Dataset.from_tensor_slices((train_images, train_labels))
               .shuffle(len(train_images), seed=CLASSIFIER_SEED).batch(64))
    classifier.fit(batches, epochs=PHOTO_CLASSIFIER_EPOCHS, shuffle=False, verbose=0)
    predicted = classifier.predict(images[held_out], batch_size=256, verbose=0).argmax(axis=1)
    info = {"classes": class_names, "accuracy": float((predicted == labels[held_out]).mean()),
            "held_out": int(held_out.sum()), "trained_on": int(len(train_images))}
    return keras.Model(inputs, [features, probabilities], name="folder_classifier"), info


def _folder_key(root):
    """The folder's file names and sizes: the same photographs copied elsewhere (another machine,
    a CI checkout, a re-created mount: new paths and modification times) find the same classifier,
    so their Fréchet distances stay comparable and it is not trained again."""
    from wgan_tf.data.folder_source import FolderItems

    return hashlib.sha1(json.dumps(FolderItems(root).contents).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=8)
def folder_classifier(root, image_size=64, channels=3, cache_dir=None):
    """The classifier of a labelled photo folder for this image shape, ``images in [-1, 1] ->
    [features [N, 128], class probabilities]``: loaded from ``cache_dir`` (default
    ``default_cache_dir()``), keyed by the folder's files (names and sizes, so a copy finds it) and
    the shape, or trained there first (minutes on a CPU). Its held-out accuracy is in
    ``folder_classifier_info``. Features of a network trained on the data itself: its Fréchet
    distances are comparable between runs on the same folder, not with published FIDs."""
    path = _folder_classifier_path(root, image_size, channels, cache_dir)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model, info = train_folder_classifier(root, image_size, channels)
        partial = f"{path}.{os.getpid()}.keras"  # other processes may be training it too
        model.save(partial)
        with open(f"{path[:-len('.keras')]}.json.{os.getpid()}", "w") as f:
            json.dump(info, f)
        os.replace(f"{path[:-len('.keras')]}.json.{os.getpid()}", f"{path[:-len('.keras')]}.json")
        os.replace(partial, path)
    return keras.saving.load_model(path, compile=False)


def folder_classifier_info(root, image_size=64, channels=3, cache_dir=None):
    """What ``folder_classifier`` wrote beside the model: classes, held-out accuracy."""
    folder_classifier(root, image_size, channels, cache_dir)
    path = _folder_classifier_path(root, image_size, channels, cache_dir)
    with open(f"{path[:-len('.keras')]}.json") as f:
        return json.load(f)


def _folder_classifier_path(root, image_size, channels, cache_dir):
    name = os.path.basename(os.path.normpath(root)) or "folder"
    return os.path.join(cache_dir or default_cache_dir(),
                        f"{name}-classifier-v{PHOTO_CLASSIFIER_VERSION}-{image_size}x{image_size}"
                        f"x{channels}-{_folder_key(os.path.abspath(root))}.keras")


def classifier_for(spec, image_size, channels, cache_dir=None):
    """(name, classifier) for a dataset spec where the package can train one on the data's own
    labels (``digits`` and its splits; ``folder:PATH`` with class subfolders), else None. The name
    (e.g. ``flowers-classifier-v1-32x32x3``) says which features a distance was measured in."""
    if spec == "digits" or spec.startswith("digits:"):
        return (f"digits-classifier-v{CLASSIFIER_VERSION}-{image_size}x{image_size}x{channels}",
                digits_classifier(image_size, channels, cache_dir))
    if spec.startswith("folder:"):
        from wgan_tf.data.folder_source import FolderItems

        root = os.path.abspath(os.path.expanduser(spec[len("folder:"):]))
        if FolderItems(root).labels() is None:
            return None
        name = os.path.basename(os.path.normpath(root))
        return (f"{name}-classifier-v{PHOTO_CLASSIFIER_VERSION}-{image_size}x{image_size}"
                f"x{channels}", folder_classifier(root, image_size, channels, cache_dir))
    return None


# --- FID -----------------------------------------------------------------------------------------

INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_HELP = (
    "FID needs InceptionV3 ImageNet weights, and nothing is downloaded: pass the Keras weights "
    "file (inception_v3_weights_tf_dim_ordering_tf_kernels.h5 from the keras-applications "
    "releases, which also gives the Inception Score; or its _notop.h5) by path")


@functools.lru_cache(maxsize=1)
def _inception(weights_path):
    """(a model ``images -> [2048 pooled features, 1000 class probabilities]``) from the full
    ImageNet weights file, or (a model ``images -> features``) from the no-top one."""
    shape = (INCEPTION_SIZE, INCEPTION_SIZE, 3)
    try:
        full = keras.applications.InceptionV3(weights=weights_path, include_top=True,
                                              input_shape=shape)
        return keras.Model(full.input, [full.get_layer("avg_pool").output, full.output])
    except (ValueError, OSError):
        pass  # not the full weights: the no-top ones?
    try:
        return keras.applications.InceptionV3(weights=weights_path, include_top=False,
                                              pooling="avg", input_shape=shape)
    except (ValueError, OSError) as e:
        raise ConfigError(f"{weights_path} does not hold InceptionV3 weights (full or no-top): "
                          f"{e}") from e


def check_inception_weights(weights_path):
    """A ``ConfigError`` unless ``weights_path`` names a file: evaluation fails before it works."""
    if not weights_path:
        raise ConfigError(INCEPTION_WEIGHTS_HELP)
    if not os.path.isfile(weights_path):
        raise ConfigError(f"no InceptionV3 weights file at {weights_path}")


def inception_outputs(images, weights_path, batch_size=50):
    """InceptionV3 on images in [-1, 1] (its own input range), resized to 299x299 bilinearly,
    grey images repeated to three channels: (2048 pooled features, 1000 ImageNet class
    probabilities, or None with no-top weights)."""
    check_inception_weights(weights_path)

    def prepare(batch):
        batch = tf.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
        return tf.image.grayscale_to_rgb(batch) if batch.shape[-1] == 1 else batch

    batches = (tf.data.Dataset.from_tensor_slices(np.asarray(images, np.float32))
               .batch(batch_size).map(prepare))
    outputs = _inception(os.path.abspath(weights_path)).predict(batches, verbose=0)
    return tuple(outputs) if isinstance(outputs, (list, tuple)) else (outputs, None)


def inception_gives_scores(weights_path):
    """Whether the weights file is the full one, with ImageNet's classes (the Inception Score)."""
    check_inception_weights(weights_path)
    return len(_inception(os.path.abspath(weights_path)).outputs) == 2


def inception_features(images, weights_path, batch_size=50):
    """InceptionV3's 2048 pooled features of images in [-1, 1] (``inception_outputs``)."""
    return inception_outputs(images, weights_path, batch_size)[0]


def fid(images_a, images_b, weights_path, batch_size=50):
    """Fréchet Inception Distance (Heusel et al. 2017) with ``keras.applications.InceptionV3``.

    The weights come only from ``weights_path``; without one this is a ``ConfigError``. Keras's
    InceptionV3 is not the 2015 TensorFlow graph of the reference TTUR code, so values differ
    somewhat from published FIDs; and FID is biased upwards for small N (papers use 10k-50k
    samples).
    """
    return frechet_distance(inception_features(images_a, weights_path, batch_size),
                            inception_features(images_b, weights_path, batch_size))


# --- Wasserstein auto-encoders: sharpness and reconstruction ------------------------------------

# ITU-R 601 luma, as tf.image.rgb_to_grayscale (the official code's conversion).
_GRAY = np.array([0.2989, 0.5870, 0.1140], np.float32)
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def sharpness(images):
    """The WAE paper's sharpness, one value per image (Tolstikhin et al. 2018, Table 1; the
    official code's ``compute_blurriness``): images in [-1, 1] to grayscale (0.2989, 0.5870,
    0.1140; a 1-channel image as it is), convolved with the 3x3 Laplacian [[0, 1, 0], [1, -4, 1],
    [0, 1, 0]] without padding, and the population variance of the result. Blurry images score
    low. Returns float64 ``[N]``."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ConfigError(f"sharpness needs images [N, H, W, 1 or 3], got shape {images.shape}")
    gray = images[..., 0] if images.shape[-1] == 1 else images @ _GRAY
    response = tf.nn.conv2d(gray[..., None], _LAPLACIAN[..., None, None], strides=1,
                            padding="VALID").numpy()
    return response.reshape(len(images), -1).astype(np.float64).var(axis=1)


def reconstruction_error(images, reconstructions):
    """Mean squared pixel error on [-1, 1], over every pixel and channel of every image."""
    images, reconstructions = (np.asarray(a, np.float64) for a in (images, reconstructions))
    return float(np.mean((images - reconstructions) ** 2))
