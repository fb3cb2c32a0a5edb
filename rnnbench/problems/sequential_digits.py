"""sequential_digits: classify an 8x8 handwritten digit read one pixel per step (scikit-learn's bundled digits)."""

from __future__ import annotations

import functools

import numpy as np

from rnnbench.problems.base import DefaultGrid, Problem, StorageLayout

N_IMAGES = 1797  # sklearn.datasets.load_digits
SIDE = 8
PIXELS = SIDE * SIDE
LEVELS = 16  # pixel values are the integers 0..16
SPLIT_SEED = 0  # the one shuffle that assigns every image to exactly one split
PERMUTATION_SEED = 0  # the pixel order of the permuted variant (PROBLEMS.md: "from seed 0")
# images per held-out split (20 % and 10 %); train gets the other 1,257
SPLIT_SIZES = {"test": 360, "val": 180}
INSTALL_HINT = 'pip install -e ".[digits]"'


@functools.lru_cache(maxsize=1)
def load_images() -> tuple[np.ndarray, np.ndarray]:
    """(pixels as integers 0..16, uint8 (1797, 64) in row-major order; labels int64 (1797,)), loaded on first
    use: the data ships inside scikit-learn (no download), which is an optional dependency."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(f"sequential_digits needs scikit-learn, an optional dependency: {INSTALL_HINT}") from exc
    digits = load_digits()
    pixels, labels = digits.data.astype(np.uint8), digits.target.astype(np.int64)
    if pixels.shape != (N_IMAGES, PIXELS) or pixels.max() > LEVELS:
        raise ValueError(f"unexpected load_digits data: shape {pixels.shape}, max {pixels.max()}")
    return pixels, labels


@functools.lru_cache(maxsize=1)
def split_images() -> dict[str, np.ndarray]:
    """Split name -> indices of its images: one seeded shuffle, cut into disjoint test, val and train parts."""
    order = np.random.default_rng(SPLIT_SEED).permutation(N_IMAGES)
    test, val = SPLIT_SIZES["test"], SPLIT_SIZES["val"]
    return {"test": order[:test], "val": order[test:test + val], "train": order[test + val:]}


def pixel_order(permuted: bool) -> np.ndarray:
    """The step at which each pixel is read: row-major, or the fixed permutation from seed 0."""
    return np.random.default_rng(PERMUTATION_SEED).permutation(PIXELS) if permuted else np.arange(PIXELS)


def _rows_as_keys(pixels: np.ndarray) -> np.ndarray:
    """uint8 rows (n, 64) -> one 64-byte opaque value per row, which numpy sorts and searches bytewise."""
    return np.ascontiguousarray(pixels).view(np.dtype((np.void, PIXELS))).reshape(-1)


class SequentialDigits(Problem):
    """Input (64, 1): the 64 pixels of an 8x8 digit scaled to [0, 1] (value / 16), one per step in row-major
    order. Target: the digit (10 logits, cross-entropy), read at the last step. T is fixed at 64.

        image (8x8, values 0..16)      x (64 steps, value / 16)                      y
        0  0  5 13  9  1  0  0    step 0..7:   0  0  .31 .81 .56 .06  0  0
        0  0 13 15 10 15  5  0    step 8..15:  0  0  .81 .94 .62 .94 .31 0
        ...                       ...
        0  0  6 13 10  0  0  0    step 56..63: 0  0  .38 .81 .62  0   0  0      -> 0

    Worked example: that is load_digits image 0, a 0: x starts 0, 0, 5/16, 13/16, 9/16, 1/16, 0, 0 and
    y = 0. In the permuted variant step 0 reads pixel 16 (row 2, column 0), step 1 pixel 36, and so on.

    Splits: one shuffle with seed 0 assigns each of the 1,797 images to test (360), val (180) or train
    (1,257); a split's rows are drawn only from its own images (the data seed only picks their order), so
    the splits never share an image. Held-out splits hold each image at most once; train cycles through its
    images in a fresh random order per pass.
    Baseline (no memory): chance 0.1 (the majority class is 183 of 1,797 = 0.102); the empirical baseline
    predicts the training images' most frequent digit. Solved: test accuracy >= 0.95.
    Source: the UCI optical recognition of handwritten digits data (Alpaydin & Kaynak 1998) as bundled by
    scikit-learn; read pixel by pixel as in sequential MNIST (Le, Jaitly & Hinton 2015).
    """

    name = "sequential_digits"
    storage = StorageLayout(y="int")  # real-valued pixels kept as float32; the class index as int
    length_generalises = False  # 64 pixels: there is no other length
    permuted = False
    input_size = 1
    output_size = 10
    target_kind = "last"
    loss = "ce"
    metric_name = "accuracy"
    higher_is_better = True
    min_seq_len = PIXELS
    y_range = (0.0, 9.0)
    baseline_value = 0.1
    threshold = 0.95
    # the validation and test splits hold 180 and 360 images (a fixed seeded split of sklearn's 1,797)
    default_grid = DefaultGrid(seq_lens=(PIXELS,), hidden_size=64, steps=1000, n_val=180, n_test=360)

    def check_seq_len(self, seq_len):
        super().check_seq_len(seq_len)
        if seq_len != PIXELS:
            raise ValueError(f"{self.name}: seq_len={seq_len} is not allowed; an 8x8 image is read in exactly "
                             f"seq_len={PIXELS} steps")

    def check_rows(self, n_rows, split):
        pool = self._split(split)
        if split != "train" and n_rows > len(pool):
            raise ValueError(f"{self.name}: the {split} split holds {len(pool)} images; n_rows={n_rows} would "
                             f"repeat images (and understate the standard error); use at most {len(pool)}")

    def _split(self, split: str) -> np.ndarray:
        parts = split_images()
        if split not in parts:
            raise ValueError(f"{self.name}: unknown split {split!r}; splits: {', '.join(parts)}")
        return parts[split]

    def generate(self, n, seq_len, rng):
        raise ValueError(f"{self.name} draws each split from its own images: call generate_split(n, seq_len, "
                         "split, rng) (rnnbench.datasets does)")

    def generate_split(self, n, seq_len, split, rng):
        self.check_seq_len(seq_len)
        self.check_rows(n, split)
        pool = self._split(split)
        pixels, labels = load_images()
        passes = -(-n // len(pool))
        # one independent random order of the split's images per pass: every image once per pass
        picks = pool[np.argsort(rng.random((passes, len(pool))), axis=1).reshape(-1)[:n]]
        x = pixels[picks][:, pixel_order(self.permuted)].astype(np.float32) / np.float32(LEVELS)
        return x[:, :, None], labels[picks].astype(np.float32).reshape(n, 1, 1)

    @functools.cached_property
    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image (in this variant's pixel order) as a sorted byte key, with its label."""
        pixels, labels = load_images()
        keys = _rows_as_keys(pixels[:, pixel_order(self.permuted)])
        order = np.argsort(keys)
        return keys[order], labels[order]

    def semantic_checks(self, x, y, lengths=None):
        values = x[:, :, 0]
        # NaN and out-of-range values become some level here; they fail the exact comparison below
        levels = np.rint(np.clip(np.nan_to_num(values), 0, 1) * LEVELS)
        sixteenths = np.all(levels / LEVELS == values, axis=1)
        keys, labels = self._lookup
        rows = _rows_as_keys(levels.astype(np.uint8))
        found = np.minimum(np.searchsorted(keys, rows), len(keys) - 1)
        known = sixteenths & (keys[found] == rows)
        return {
            "pixels_in_sixteenths": ("x", sixteenths),
            "image_is_a_digits_image": ("x", known),
            "label_matches_image": ("y", known & (labels[found] == y[:, 0, 0])),
        }

    def memoryless_class(self):
        """The most frequent digit among the training images: the prior a model could learn without memory."""
        _, labels = load_images()
        return int(np.bincount(labels[self._split("train")], minlength=self.output_size).argmax())


class SequentialDigitsPermuted(SequentialDigits):
    """sequential_digits with the 64 pixels read in one fixed random order (`np.random.default_rng(0)
    .permutation(64)`), which puts pixels that are neighbours in the image far apart in time (as permuted
    MNIST does). Everything else, splits included, is as in sequential_digits."""

    name = "sequential_digits_permuted"
    permuted = True
