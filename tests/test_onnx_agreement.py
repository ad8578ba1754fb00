"""The served ONNX model (onnxruntime) against the Keras model it was exported from, on all 10,000 MNIST test
digits: the same digit and the same verdict on every one, and nearly the same probabilities."""
import numpy as np
import pytest
from conftest import REPO

import mnist_digits

MAX_PROBABILITY_DIFFERENCE = 1e-4


@pytest.fixture(scope="module")
def both_models():
    pytest.importorskip("tensorflow")
    return (mnist_digits.load_model(REPO / "models" / "mnist_cnn.keras"),
            mnist_digits.load_model(REPO / "models" / "mnist_cnn.onnx"))


def test_onnx_and_keras_agree_on_every_test_digit(both_models, mnist):
    keras_model, onnx_model = both_models
    assert keras_model.runtime.startswith("tensorflow") and onnx_model.runtime.startswith("onnxruntime")
    images = mnist[1][0][..., None].astype(np.float32) / 255
    from_keras = np.concatenate([keras_model(images[i:i + 1000]) for i in range(0, len(images), 1000)])
    from_onnx = np.concatenate([onnx_model(images[i:i + 1000]) for i in range(0, len(images), 1000)])
    largest = float(np.abs(from_keras - from_onnx).max())
    print(f"largest probability difference on {len(images):,} test digits: {largest:.2e}")
    assert largest <= MAX_PROBABILITY_DIFFERENCE
    assert (from_keras.argmax(axis=1) == from_onnx.argmax(axis=1)).all()
    rule = mnist_digits.load_metadata(REPO / "models" / "mnist_cnn.onnx")["rule"]
    assert (mnist_digits.verdicts(from_keras, rule) == mnist_digits.verdicts(from_onnx, rule)).all()
    assert (from_onnx.argmax(axis=1) == mnist[1][1]).mean() >= 0.99
