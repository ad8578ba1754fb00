"""Training (TensorFlow): the augmentation layer, fused batch normalisation, the networks and the recipe of the
improved CNN, on MNIST alone (notebooks/1_toward_99_6.ipynb) or with the synthetic images (the served model,
notebooks/2_what_it_does_not_know.ipynb). The layers are registered under the package name "mnist_project", as in
the models saved before the package existed.
"""
import dataclasses
import itertools
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from mnist_digits.serving import native_stderr_silenced

with native_stderr_silenced():  # TensorFlow's C++ start-up notices go to file descriptor 2
    import keras
    import pandas as pd
    import tensorflow as tf
    from keras import layers

# The recipe of the improved CNN
BATCH_SIZE = 128  # quick mode (notebook.start) trains in batches of 32: enough steps for batch normalisation to settle
IMPROVED_EPOCHS = 15
IMPROVED_PEAK_LR = 3e-3
WARMUP_FRACTION = 0.1
ELASTIC_PIXELS = 1.0  # largest elastic displacement of the augmentation, in pixels
IMPROVED_WIDTHS = (32, 64)  # the improved CNN's filters at full resolution and at 12 x 12
OE_WEIGHT = 0.5  # weight of a non-digit's loss (its target: the uniform distribution) against a digit's


@keras.saving.register_keras_serializable(package="mnist_project")
class RandomAffine(layers.Layer):
    """Training-time augmentation: a random rotation, zoom and shift, applied as one affine transform per image.

    Optionally (the improved CNN) also a smooth elastic displacement of up to `elastic_pixels`, in the same
    resampling, and a random stroke width: each digit blended towards its dilation or its erosion by up to
    `stroke_width`.
    """

    def __init__(self, rotation_degrees=10.0, zoom=0.1, shift=0.1, elastic_pixels=0.0, stroke_width=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees, self.zoom, self.shift, self.seed = rotation_degrees, zoom, shift, seed
        self.elastic_pixels, self.stroke_width = elastic_pixels, stroke_width
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        ops = keras.ops
        images = ops.cast(images, "float32")
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        u = keras.random.uniform((batch, 4), -1.0, 1.0, seed=self.seed_generator)
        angle = u[:, 0] * np.deg2rad(self.rotation_degrees)
        scale = 1.0 + u[:, 1] * self.zoom  # > 1 samples a wider area: the digit shrinks
        shift_x, shift_y = u[:, 2] * self.shift * width, u[:, 3] * self.shift * height
        cos, sin = scale * ops.cos(angle), scale * ops.sin(angle)
        center_x, center_y = (width - 1) / 2, (height - 1) / 2
        # Each output pixel (x, y) reads the input at A (p - c) + c - shift, with A = scale * rotation.
        offset_x = center_x - cos * center_x + sin * center_y - shift_x
        offset_y = center_y - sin * center_x - cos * center_y - shift_y
        if self.elastic_pixels:
            images = self.warp(images, cos, sin, offset_x, offset_y)
        else:
            zeros = ops.zeros_like(cos)
            transform = ops.stack([cos, -sin, offset_x, sin, cos, offset_y, zeros, zeros], axis=1)
            images = ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                                               fill_value=0)
        if self.stroke_width:
            images = self.vary_stroke_width(images)
        return images

    def warp(self, images, cos, sin, offset_x, offset_y):
        """The affine map plus a smooth random displacement field (bicubic from a 4 x 4 grid), one resampling."""
        ops = keras.ops
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        coarse = keras.random.uniform((batch, 4, 4, 2), -1.0, 1.0, seed=self.seed_generator)
        field = ops.image.resize(coarse, (height, width), interpolation="bicubic") * self.elastic_pixels
        rows, cols = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"),
                                  indexing="ij")
        per_image = lambda value: ops.reshape(value, (-1, 1, 1))  # noqa: E731
        x = per_image(cos) * cols - per_image(sin) * rows + per_image(offset_x) + field[..., 0]
        y = per_image(sin) * cols + per_image(cos) * rows + per_image(offset_y) + field[..., 1]
        return self.bilinear(images, x, y)[..., None]

    @staticmethod
    def bilinear(images, x, y):
        """Sample images (batch, height, width, 1) at the points (x, y), each (batch, height, width); zero outside."""
        ops = keras.ops
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        flat = ops.reshape(images, (-1,))
        first = ops.reshape(ops.arange(batch) * (height * width), (-1, 1, 1))
        x0, y0 = ops.floor(x), ops.floor(y)
        result = 0.0
        for dx, dy in itertools.product((0, 1), repeat=2):
            corner_x, corner_y = x0 + dx, y0 + dy
            weight = (1 - ops.abs(x - corner_x)) * (1 - ops.abs(y - corner_y))
            inside = (corner_x >= 0) & (corner_x <= width - 1) & (corner_y >= 0) & (corner_y <= height - 1)
            index = first + ops.cast(ops.clip(corner_y, 0, height - 1) * width + ops.clip(corner_x, 0, width - 1),
                                     "int32")
            result = result + ops.where(inside, weight * ops.take(flat, index), 0.0)
        return result

    def vary_stroke_width(self, images):
        ops = keras.ops
        t = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), -1.0, 1.0, seed=self.seed_generator)
        t = t * self.stroke_width
        dilated = ops.max_pool(images, 3, strides=1, padding="same")
        eroded = -ops.max_pool(-images, 3, strides=1, padding="same")
        return images + ops.relu(t) * (dilated - images) + ops.relu(-t) * (eroded - images)

    def get_config(self):
        return {**super().get_config(), "rotation_degrees": self.rotation_degrees, "zoom": self.zoom,
                "shift": self.shift, "elastic_pixels": self.elastic_pixels, "stroke_width": self.stroke_width,
                "seed": self.seed}


def cpu_computes_bfloat16():
    """True on Linux CPUs whose flags include native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def describe_cpu():
    """The CPU in words, for the records of timed runs: its cores, model name and widest vector arithmetic."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{os.cpu_count()}-core CPU"
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    flags = info.split()
    vectors = ("AVX-512 BF16" if cpu_computes_bfloat16() else "AVX-512" if "avx512f" in flags
               else "AVX2 only" if "avx2" in flags else "no AVX2")
    return f"{os.cpu_count()}-core {names[0] if names else 'CPU'} ({vectors})"


@keras.saving.register_keras_serializable(package="mnist_project")
class FusedBatchNorm(layers.BatchNormalization):
    """BatchNormalization whose training step runs TensorFlow's fused kernel: one pass over the activations.

    Keras 3 normalises with a dozen separate element-wise operations, each a pass over the activations (and as
    many again for the gradient), which is what a CPU spends most of its time on in this small network. Same
    statistics, same weights and the same inference; the saved model uses the standard layer (export.deployable).
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or len(inputs.shape) != 4:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32"), epsilon=self.epsilon,
            is_training=True)
        for moving, batch_value in [(self.moving_mean, mean), (self.moving_variance, variance)]:
            moving.assign(moving * self.momentum + batch_value * (1.0 - self.momentum))
        return outputs


def conv_bn_relu(filters, kernel_size, strides=1, padding="valid"):
    return [layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False),
            FusedBatchNorm(), layers.ReLU()]


def compute_policy(setting="auto"):
    """The Keras dtype policy: "auto" is mixed_bfloat16 on a CPU that computes bfloat16 natively, else float32."""
    if setting != "auto":
        return setting
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    return "mixed_bfloat16" if not on_gpu and cpu_computes_bfloat16() else "float32"


def build_improved_cnn(seed=42, name="improved_cnn", policy="float32", elastic_pixels=ELASTIC_PIXELS,
                       widths=IMPROVED_WIDTHS):
    """3 x 3 convolutions with batch normalisation and ReLU, strided ones for pooling, dropout, a softmax. `widths`:
    the filters of the first convolution and of the two at 12 x 12."""
    first, middle = widths
    keras.config.set_dtype_policy(policy)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        RandomAffine(seed=seed, elastic_pixels=elastic_pixels, name="augment"),
        *conv_bn_relu(first, 3), *conv_bn_relu(32, 3, strides=2),  # 28 -> 26 -> 12 pixels
        layers.Dropout(0.25),
        *conv_bn_relu(middle, 3), *conv_bn_relu(middle, 3), *conv_bn_relu(64, 3, strides=2, padding="same"),  # -> 4
        layers.Dropout(0.25),
        *conv_bn_relu(128, 4),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax", dtype="float32"),  # softmax in float32 for stable probabilities
    ], name=name)
    keras.config.set_dtype_policy("float32")
    return model


def residual_block(x, filters, strides, shortcut=True):
    """Two 3 x 3 convolutions with batch normalisation, added to the input (projected when its shape changes)."""
    block_input = x
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.ReLU()(FusedBatchNorm()(x))
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = FusedBatchNorm()(x)
    if not shortcut:  # a plain network of the same convolutions, for comparison
        return layers.ReLU()(x)
    if strides != 1 or block_input.shape[-1] != filters:
        projection = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(block_input)
        block_input = FusedBatchNorm()(projection)
    return layers.ReLU()(layers.Add()([x, block_input]))


def build_resnet(seed=42, shortcuts=True, policy="float32"):
    """A small residual network for 28 x 28 digits: a stem, three residual blocks, global average pooling."""
    keras.config.set_dtype_policy(policy)
    inputs = keras.Input(shape=(28, 28, 1))
    x = RandomAffine(seed=seed, name="augment")(inputs)
    x = layers.ReLU()(FusedBatchNorm()(layers.Conv2D(32, 3, padding="same", use_bias=False)(x)))
    for filters in (32, 64, 128):  # 28 -> 14 -> 7 -> 4 pixels
        x = residual_block(x, filters, strides=2, shortcut=shortcuts)
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(x))
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)
    keras.config.set_dtype_policy("float32")
    return keras.Model(inputs, outputs, name="resnet")


def cosine_schedule(peak_learning_rate, epochs, steps_per_epoch, warmup_fraction=0.0):
    """Linear warm-up from a tenth of the peak over warmup_fraction of the steps, then cosine decay to zero."""
    steps = steps_per_epoch * epochs
    warmup_steps = int(steps * warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_learning_rate / 10 if warmup_steps else peak_learning_rate,
        decay_steps=steps - warmup_steps, warmup_target=peak_learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps)


def steps_per_epoch(samples, batch_size=None):
    return int(np.ceil(samples / (batch_size or BATCH_SIZE)))


def fit(model, train, validation, epochs, learning_rate=1e-3, batch_size=None, patience=None, sample_weight=None,
        verbose=2):
    """Compile and fit on train = (images, labels or one-hot targets), watching validation = (images, labels);
    early stopping on validation accuracy keeps the best epoch's weights (patience None: never stops early).
    Returns the history as a DataFrame indexed by epoch, and the training seconds."""
    images, targets = train
    one_hot = targets.ndim == 2
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=["accuracy"],
                  loss="categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience or epochs,
                                         restore_best_weights=True)
    x_val, y_val = validation
    start = time.perf_counter()
    validation = (x_val, keras.utils.to_categorical(y_val, 10) if one_hot else y_val)
    history = model.fit(images, targets, sample_weight=sample_weight, epochs=epochs,
                        batch_size=batch_size or BATCH_SIZE, validation_data=validation, callbacks=[stop],
                        verbose=verbose)
    return history_frame(history), time.perf_counter() - start


def history_frame(history):
    """A Keras History as a DataFrame indexed by epoch, from 1."""
    return pd.DataFrame(history.history, index=pd.RangeIndex(1, len(history.epoch) + 1, name="epoch"))


def improved_training_data(images, labels, synthetic=None, non_digits=True, other_digits=True):
    """Digits with one-hot targets, then the synthetic digits and the non-digits (uniform targets, weight OE_WEIGHT)
    when synthetic (from mnist_digits.synthetic.make_synthetic_training_data) is given: images, targets, weights."""
    parts = [(images, labels)]
    if synthetic and other_digits:
        parts += [(digits[..., np.newaxis], digit_labels) for name, (digits, digit_labels) in synthetic.items()
                  if name != "non-digits"]
    targets = keras.utils.to_categorical(np.concatenate([part_labels for _, part_labels in parts]), 10)
    weights = np.ones(len(targets))
    if synthetic and non_digits:
        shapes = synthetic["non-digits"][0][..., np.newaxis]
        parts.append((shapes, None))
        targets = np.concatenate([targets, np.full((len(shapes), 10), 0.1)])
        weights = np.r_[weights, np.full(len(shapes), OE_WEIGHT)]
    return np.concatenate([part_images for part_images, _ in parts]), targets.astype(np.float32), weights


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the improved CNN is trained: Adam with a warm-up and cosine decay of the learning rate to zero."""
    epochs: int
    batch_size: int
    peak_learning_rate: float
    warmup_fraction: float = WARMUP_FRACTION
    ema_momentum: float | None = None  # evaluate and save an average of the weights instead of the last ones
    synthetic_share: float = 1.0  # share of the synthetic images, drawn afresh each epoch; MNIST's digits all go in
    elastic_pixels: float = ELASTIC_PIXELS  # the augmentation's elastic displacement; 0: rotation, zoom, shift only
    widths: tuple[int, int] = IMPROVED_WIDTHS


PREVIOUS_RECIPE = Recipe(epochs=IMPROVED_EPOCHS, batch_size=BATCH_SIZE, peak_learning_rate=IMPROVED_PEAK_LR)
FAST_RECIPE = Recipe(epochs=10, batch_size=256, peak_learning_rate=4e-3, ema_momentum=0.99, synthetic_share=0.25,
                     elastic_pixels=0.0, widths=(16, 48))
RECIPE = PREVIOUS_RECIPE


class EpochSampler(keras.utils.PyDataset):
    """Batches of (images, targets, weights): the first `kept` rows every epoch, and a fresh random `share` of the
    others, all shuffled."""

    def __init__(self, images, targets, weights, kept, share, batch_size, seed):
        super().__init__()
        self.arrays, self.kept, self.batch_size = (images, targets, weights), kept, batch_size
        self.drawn = round(share * (len(images) - kept))
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return -(-(self.kept + self.drawn) // self.batch_size)

    def on_epoch_end(self):
        extra = self.rng.choice(np.arange(self.kept, len(self.arrays[0])), self.drawn, replace=False)
        self.order = self.rng.permutation(np.r_[np.arange(self.kept), extra])

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return tuple(array[rows] for array in self.arrays)


def train_improved_cnn(train, validation=None, synthetic=None, seed=42, epochs=None, name="improved_cnn",
                       policy="float32", verbose=2, non_digits=True, other_digits=True, recipe=None):
    """A network from `seed`, trained with `recipe` (default: RECIPE) for `epochs` (default: the recipe's) on the
    digits of train = (images, labels) and, when given, the synthetic images. With validation data and no weight
    average it keeps the best epoch's weights; otherwise the last (or their average). Returns the model, its history
    (None without validation data) and the training seconds."""
    recipe = recipe or RECIPE
    epochs = epochs or recipe.epochs
    quick = PREVIOUS_RECIPE.batch_size > BATCH_SIZE  # notebook.start's quick mode trains in smaller batches
    batch_size = BATCH_SIZE if quick else recipe.batch_size
    keras.utils.set_random_seed(seed)
    model = build_improved_cnn(seed=seed, name=name, policy=policy, elastic_pixels=recipe.elastic_pixels,
                               widths=recipe.widths)
    images, targets, weights = improved_training_data(*train, synthetic, non_digits, other_digits)
    if recipe.synthetic_share < 1 and len(images) > len(train[0]):
        data = {"x": EpochSampler(images, targets, weights, len(train[0]), recipe.synthetic_share, batch_size, seed)}
        steps = len(data["x"])
    else:
        data = {"x": images, "y": targets, "sample_weight": weights, "batch_size": batch_size}
        steps = steps_per_epoch(len(images), batch_size)
    schedule = cosine_schedule(recipe.peak_learning_rate, epochs, steps, recipe.warmup_fraction)
    optimizer = keras.optimizers.Adam(schedule, use_ema=bool(recipe.ema_momentum),
                                      ema_momentum=recipe.ema_momentum or 0.99)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy",
                  metrics=["accuracy"] if validation is not None else None)
    callbacks, validation_data = [], None
    if validation is not None:
        validation_data = (validation[0], keras.utils.to_categorical(validation[1], 10))
        if recipe.ema_momentum:  # validate the average, the weights that are kept
            callbacks.append(keras.callbacks.SwapEMAWeights())
        else:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=epochs,
                                                           restore_best_weights=True))
    start = time.perf_counter()
    history = model.fit(**data, epochs=epochs, validation_data=validation_data, callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    return model, None if validation is None else history_frame(history), seconds
