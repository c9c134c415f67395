"""A small Fashion-MNIST in the real files' format for the PyTorch study's tests: `per_class`
training and test images of each class, each class a bright square at its own place on noise."""
import gzip
import os

import numpy as np


def write_idx(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as f:
        f.write(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_fake_fashion_mnist(directory, train_per_class=12, test_per_class=5, seed=3):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    for part, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 60, size=(labels.size, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c:2 * c + 8, 2 * c:2 * c + 8] = 250
        write_idx(os.path.join(directory, f"{part}-images-idx3-ubyte.gz"), 0x803, images)
        write_idx(os.path.join(directory, f"{part}-labels-idx1-ubyte.gz"), 0x801, labels)
