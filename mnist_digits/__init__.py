"""mnist_digits: the code that the companion notebooks, predict.py, the web app, the scripts and the tests share.

Modules (what serving needs imports no TensorFlow):

- `preprocess`: decode a user's image and turn it into an MNIST-style 28 x 28 digit (`mnist_style`);
- `serving`: load the exported model with onnxruntime, its metadata, and the digit / unsure / not-a-digit rule;
- `data`: read MNIST's IDX files or Kaggle's CSV files, validated, and split them;
- `synthetic`: the generators of non-digits, digits in other styles, scans and shifted digits, in a training and a
  held-out version;
- `stress`: the stress sets, their tables and the choice of the rule;
- `training` (TensorFlow): the augmentation layer, the networks and the training recipe;
- `export` (TensorFlow): the served float32 copy, the .keras and ONNX files and their metadata;
- `explain` (TensorFlow): attributions and their faithfulness test;
- `notebook`: settings and helpers of the companion notebooks (output folders, quick mode, figures).
"""
from mnist_digits.preprocess import MAX_PIXELS, ImageTooLarge, decode_image, mnist_style, read_image
from mnist_digits.serving import (
    DEFAULT_MODEL,
    DEFAULT_RULE,
    MODELS_DIR,
    OnnxModel,
    Prediction,
    file_sha256,
    load_metadata,
    load_model,
    metadata_path,
    native_stderr_silenced,
    predict,
    top_two_mass,
    verdicts,
)

__all__ = ["DEFAULT_MODEL", "DEFAULT_RULE", "MAX_PIXELS", "MODELS_DIR", "ImageTooLarge", "OnnxModel", "Prediction",
           "decode_image", "file_sha256", "load_metadata", "load_model", "metadata_path", "mnist_style",
           "native_stderr_silenced", "predict", "read_image", "top_two_mass", "verdicts"]
