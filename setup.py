"""Packaging for wgan-tf: Wasserstein GANs in Keras 3 / TensorFlow, served over TF Serving's gRPC API."""
from setuptools import find_packages, setup

# Versions known to work together (TF 2.21 ships with Keras 3; the serving API must match the
# TensorFlow that exports, or tensorflow_model_server meets unknown ops).
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "numpy>=1.26,<2.5",
    "scikit-learn==1.7.2",
    "scipy==1.15.3",
    "pillow==13.0.0",
    "matplotlib==3.10.7",
    "tqdm==4.70.1",
    "tensorboard==2.21.0",
    "tf-keras-vis==0.8.7",
    "tensorflow-datasets==4.9.10",
    "lmdb==3.0.0",
    "importlib_resources==7.1.0",  # TFDS 4.9.10 needs it to prepare datasets
    "grpcio==1.85.1",
    "grpcio-health-checking==1.85.1",
    "tensorflow-serving-api==2.21.0",
    "prometheus-client==0.26.0",  # the Python server's metrics endpoint
]

setup(
    name="wgan-tf",
    version="0.1.0",
    description="Wasserstein GAN (Arjovsky et al. 2017) and WGAN-GP with keras.Model.fit, "
    "exported for TensorFlow Serving",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["wgan_tf", "wgan_tf.*"]),
    # The web page that `wgan-tf serve` sends on its REST port (wgan_tf/serving/page.py).
    package_data={"wgan_tf.serving": ["page_files/*"]},
    python_requires=">=3.10,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # kubeflow-training: the TFJob model that tests/test_deploy.py checks deploy/kubernetes
        # against (test-only; training needs no Kubernetes client). selenium: drives Debian's
        # chromium through Debian's chromedriver in tests/test_page.py (it downloads nothing
        # when given both paths).
        "dev": ["pytest==8.4.2", "pytest-timeout==2.4.0", "kubeflow-training==1.9.4",
                "selenium==4.51.0"],
        "and-cuda": ["tensorflow[and-cuda]==2.21.0"],
        # benchmarks/torch_reference.py: the plain PyTorch step the training benchmark compares
        # against (optional; the benchmark skips it where torch is absent).
        "bench": ["torch==2.13.0"],
    },
    entry_points={"console_scripts": ["wgan-tf=wgan_tf.cli:main"]},
)
