"""The model of MNIST_project.ipynb put to use: read an image, preprocess it like MNIST, predict the digit, and
decide whether the answer is a digit, unsure, or not a digit at all.

`predict.py`, the web app in `app/` and the tests import this module. The notebook keeps its own copies of
`mnist_style`, `top_two_mass` and `verdicts` (it must run alone in Colab) and a test holds the copies identical.
The committed model is served by onnxruntime (`models/mnist_cnn.onnx`); a Keras file (`.keras`) is loaded with
TensorFlow, which is imported only then.
"""
import contextlib
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "mnist_cnn.onnx"
# For a model without the notebook's metadata file: unsure below 0.9, never "not a digit"
DEFAULT_RULE = {"unsure_below": 0.9, "not_a_digit_below": 0.0, "not_a_digit_score": "max_probability"}
MAX_PIXELS = 25_000_000  # refuse larger images before decoding them (decompression bombs)


def mnist_style(image, min_side=8, min_contrast=0.15):
    """Turn a PIL image of one digit into a 28 x 28 float32 array in [0, 1], white ink on black, like MNIST.

    MNIST's recipe: grayscale; ink made white on a black background; cropped to the ink; scaled with
    anti-aliasing to fit a 20 x 20 box, keeping the aspect ratio; placed in a 28 x 28 image so that its centre of
    mass is at the centre. Raises ValueError for an image too small to hold a digit or with no visible ink.
    """
    image = ImageOps.exif_transpose(image)
    if min(image.size) < min_side:
        raise ValueError(f"image is {image.width}x{image.height} pixels, too small to hold a digit "
                         f"(at least {min_side}x{min_side})")
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    # Plain float32 arithmetic, not a matrix product: NumPy hands that to OpenBLAS, whose AVX-512 kernel rounds
    # some gray levels otherwise than its AVX2 one, so that an image would give another input on another CPU
    gray = rgba[..., 0] * np.float32(0.299) + rgba[..., 1] * np.float32(0.587) + rgba[..., 2] * np.float32(0.114)
    alpha = rgba[..., 3]
    if alpha.min() < 1.0:  # transparency: put the strokes on a background of the opposite brightness
        opaque = alpha > 0.5
        ink_is_dark = gray[opaque].mean() < 0.5 if opaque.any() else True
        gray = gray * alpha + (1.0 if ink_is_dark else 0.0) * (1.0 - alpha)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border)
    if background > 0.5:  # dark ink on light paper: invert so that ink is bright
        gray, background = 1.0 - gray, 1.0 - background
    ink = np.clip(gray - background, 0.0, None)
    if ink.max() < min_contrast:
        raise ValueError("no ink found: the image is blank or has almost no contrast")
    ink /= ink.max()
    rows, cols = np.nonzero(ink > 0.3)  # the ink's bounding box, ignoring faint noise
    box = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box[box < 0.1] = 0.0
    height, width = box.shape
    scale = 20.0 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(np.uint8(np.round(box * 255))).resize(size, Image.Resampling.LANCZOS)
    small = np.asarray(small, dtype=np.float32) / 255.0
    total = small.sum()
    if total == 0:
        raise ValueError("no ink left after scaling the digit down")
    center_row = (np.arange(small.shape[0]) @ small.sum(axis=1)) / total
    center_col = (np.arange(small.shape[1]) @ small.sum(axis=0)) / total
    top, left = round(14.0 - center_row), round(14.0 - center_col)  # MNIST puts the centre of mass at (14, 14)
    top, left = min(max(top, 0), 28 - small.shape[0]), min(max(left, 0), 28 - small.shape[1])
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


class ImageTooLarge(ValueError):
    """The image has more pixels than it is safe to decode."""


def decode_image(source, max_pixels=MAX_PIXELS):
    """Fully decode an image from a file object or bytes, or raise ValueError with the problem in a few words.

    The size in the header is checked before any pixel is decoded, so a small file that would expand to
    gigabytes (a decompression bomb) is refused cheaply.
    """
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ValueError("the file is empty")
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise ImageTooLarge(f"the image is too large to decode safely ({image.width}x{image.height} pixels, "
                                 f"at most {max_pixels:,})")
            image.load()
            return image.copy()
    except Image.UnidentifiedImageError:
        raise ValueError("not an image format Pillow can read") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge("the image is too large to decode safely") from None
    except PermissionError:
        raise ValueError("permission denied") from None
    except ValueError:
        raise
    except (OSError, SyntaxError, EOFError, IndexError, TypeError) as err:  # Pillow's errors for corrupt data
        raise ValueError(f"truncated or corrupt image ({str(err).splitlines()[0] if str(err) else 'no detail'})"
                         ) from None


def read_image(path, max_pixels=MAX_PIXELS):
    """Open and fully decode an image file, or raise ValueError with the problem in a few words."""
    path = Path(path)
    if not path.exists():
        raise ValueError("no such file")
    if path.is_dir():
        raise ValueError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise ValueError("the file is empty")
    try:
        with open(path, "rb") as file:
            return decode_image(file, max_pixels)
    except PermissionError:
        raise ValueError("permission denied") from None


@contextlib.contextmanager
def native_stderr_silenced():
    """Hide TensorFlow's C++ start-up notices, which it writes to file descriptor 2 before logging is configured."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class OnnxModel:
    """An ONNX model run by onnxruntime: called with a (n, 28, 28, 1) float32 batch, it returns the probabilities.

    One thread per session: the network is small, so a request gains little from several threads, and the
    server's other requests and workers keep the other cores.
    """

    def __init__(self, path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings only as errors: no notices on standard error
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        [self.input] = self.session.get_inputs()
        self.input_shape = tuple(self.input.shape)
        self.runtime = f"onnxruntime {onnxruntime.__version__}"

    def __call__(self, batch):
        return self.session.run(None, {self.input.name: np.asarray(batch, dtype=np.float32)})[0]


def load_model(path=DEFAULT_MODEL):
    """Load a model, or raise ValueError: ONNX with onnxruntime, a .keras file with Keras in safe mode.

    Either way the result is called with a (n, 28, 28, 1) float32 batch and gives (n, 10) probabilities, and it has
    `runtime` (what runs it) and `input_shape`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError("model file not found" if not path.exists() else "model path is not a file")
    if path.suffix == ".keras":
        model = _load_keras(path)
    else:
        try:
            model = OnnxModel(path)
        except ImportError:
            raise ValueError("onnxruntime is not installed: pip install -r requirements-serve.txt") from None
        except Exception as err:  # onnxruntime raises its own types for a damaged or foreign file
            raise ValueError(f"cannot load the model: {_first_line(err)}") from None
    if tuple(model.input_shape[1:]) != (28, 28, 1):
        raise ValueError(f"the model takes inputs of shape {tuple(model.input_shape[1:])}, not 28 x 28 x 1 digits")
    return model


def _first_line(err):
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _load_keras(path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with native_stderr_silenced():
            import keras
            import tensorflow as tf
    except ImportError:
        raise ValueError("a .keras model needs TensorFlow and Keras: pip install -r requirements.txt") from None
    with native_stderr_silenced():
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises many types for a damaged or foreign file
            raise ValueError(f"cannot load the model: {_first_line(err)}") from None
    # One traced graph for any batch size: much less overhead per call than an eager Keras call
    traced = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True,
                         input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    infer = lambda batch: traced(np.asarray(batch, dtype=np.float32)).numpy()  # noqa: E731
    infer.input_shape = model.input_shape
    infer.runtime = f"tensorflow {tf.__version__} (keras {keras.__version__})"
    return infer


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def metadata_path(model_path):
    return Path(model_path).with_suffix(".json")


def load_metadata(model_path=DEFAULT_MODEL):
    """The notebook's metadata beside the model: its decision rule and measured rates, or raise ValueError.

    A model without a metadata file gets DEFAULT_RULE. A metadata file that lists the model files it describes
    but not this one (its SHA-256 differs) is refused: its thresholds belong to another model.
    """
    path = metadata_path(model_path)
    if not path.exists():
        return {"rule": dict(DEFAULT_RULE), "source": "default"}
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
        rule = metadata["rule"] if "rule" in metadata else {"unsure_below": metadata["unsure_below"]}
        rule = {"unsure_below": float(rule["unsure_below"]),
                "not_a_digit_below": float(rule.get("not_a_digit_below", 0.0)),
                "not_a_digit_score": str(rule.get("not_a_digit_score", "max_probability"))}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"{path.name}: unreadable or incomplete metadata") from None
    if not 0.0 <= rule["unsure_below"] <= 1.0 or not 0.0 <= rule["not_a_digit_below"] <= 2.0:
        raise ValueError(f"{path.name}: a threshold is out of range")
    if rule["not_a_digit_score"] not in ("max_probability", "top_two_mass"):
        raise ValueError(f"{path.name}: unknown not_a_digit_score {rule['not_a_digit_score']!r}")
    files = metadata.get("files", {})
    if files:
        described = files.get(Path(model_path).name, {}).get("sha256")
        if described != file_sha256(model_path):
            raise ValueError(f"{path.name} does not describe this model file (SHA-256 differs): "
                             "the model and its metadata come from different runs")
    return {**metadata, "rule": rule, "source": path.name}


def top_two_mass(probabilities):
    """The sum of the two highest probabilities: near 1 for a digit, even a doubtful '4 or 9', low when spread."""
    return np.sort(probabilities, axis=1)[:, -2:].sum(axis=1)


def verdicts(probabilities, rule):
    """'digit', 'unsure' or 'not_a_digit' for each row of probabilities, by the rule the notebook chose.

    A digit when the highest probability reaches unsure_below; otherwise not a digit when the rule's score (the
    top-two mass, or the highest probability) falls below not_a_digit_below: no digit stands out; else unsure.
    """
    highest = probabilities.max(axis=1)
    score = top_two_mass(probabilities) if rule.get("not_a_digit_score") == "top_two_mass" else highest
    spread = score < rule.get("not_a_digit_below", 0.0)
    return np.where(highest >= rule["unsure_below"], "digit", np.where(spread, "not_a_digit", "unsure"))


@dataclass
class Prediction:
    digit: int
    probability: float
    probabilities: list  # ten floats, one per digit
    top3: list  # [(digit, probability)] most likely first
    verdict: str  # "digit", "unsure" or "not_a_digit"

    @property
    def unsure(self):
        """True unless the answer is a confident digit: unsure and not-a-digit answers both."""
        return self.verdict != "digit"

    def describe(self):
        """One line for people: '7 (99.8%; next 1 0.1%, 9 0.0%)', 'not sure: 4 or 9? ...' or 'not a digit ...'."""
        (first, p1), (second, p2), (third, p3) = self.top3
        scores = f"({p1:.1%}; next {second} {p2:.1%}, {third} {p3:.1%})"
        if self.verdict == "not_a_digit":
            return (f"not a digit: this does not look like a digit (closest {first} {p1:.1%}, {second} {p2:.1%}, "
                    f"{third} {p3:.1%})")
        return f"not sure: {first} or {second}? {scores}" if self.unsure else f"{first} {scores}"


def predict(model, digit_images, rule=None):
    """Classify MNIST-style 28 x 28 arrays (from mnist_style) with a loaded model; one Prediction each."""
    rule = rule or DEFAULT_RULE
    batch = np.asarray(digit_images, dtype=np.float32).reshape(-1, 28, 28, 1)
    probabilities = np.asarray(model(batch), dtype=np.float64)
    predictions = []
    for row, verdict in zip(probabilities, verdicts(probabilities, rule)):
        order = np.argsort(-row, kind="stable")
        top3 = [(int(d), round(float(row[d]), 4)) for d in order[:3]]
        predictions.append(Prediction(digit=top3[0][0], probability=top3[0][1],
                                      probabilities=[round(float(p), 4) for p in row], top3=top3,
                                      verdict=str(verdict)))
    return predictions
