"""Serving: load the exported model (onnxruntime, or TensorFlow for a .keras file), read its metadata, predict, and
decide whether each answer is a digit, unsure, or not a digit at all. Imports no TensorFlow unless a .keras file is
loaded, so the serving venv (requirements-serve.txt) runs it.
"""
import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"  # the repository's committed model
DEFAULT_MODEL = MODELS_DIR / "mnist_cnn.onnx"
# For a model without the notebook's metadata file: unsure below 0.9, never "not a digit"
DEFAULT_RULE = {"unsure_below": 0.9, "not_a_digit_below": 0.0, "not_a_digit_score": "max_probability"}


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
