"""Exporting the served model (TensorFlow): a float32 copy with standard layers only, saved as a portable .keras
file and as ONNX (the file predict.py, the app and the page serve), with the metadata that ties them together.
"""
import importlib
import inspect
import json
import warnings
import zipfile
from pathlib import Path

from mnist_digits.serving import file_sha256, native_stderr_silenced
from mnist_digits.training import FusedBatchNorm, RandomAffine, keras, layers


def deploy_layer(layer):
    """A float32 inference copy of a layer: Identity for the augmentation, the standard layer for FusedBatchNorm."""
    if isinstance(layer, RandomAffine):
        return layers.Identity(name=layer.name)
    config = {**layer.get_config(), "dtype": "float32"}
    return (layers.BatchNormalization if isinstance(layer, FusedBatchNorm) else type(layer)).from_config(config)


def deployable(model):
    """The model as it is served: float32, standard layers only, the same weights."""
    served = keras.models.clone_model(model, clone_function=deploy_layer)
    for layer in model.layers:
        served.get_layer(layer.name).set_weights(layer.get_weights())
    return served


def without_defaults(node):
    """A serialized Keras object with the arguments that equal their defaults left out, recursively.

    Newer Keras writes every argument, including ones older versions do not know (renorm, input_axes, ...);
    left out, they take their defaults on loading, in any version.
    """
    if isinstance(node, list):
        return [without_defaults(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: without_defaults(value) for key, value in node.items()}
    config = node.get("config")
    if isinstance(config, dict) and isinstance(node.get("module"), str) and isinstance(node.get("class_name"), str):
        try:
            kind = getattr(importlib.import_module(node["module"]), node["class_name"])
            parameters = inspect.signature(kind).parameters
        except (ImportError, AttributeError, TypeError, ValueError):
            return node
        node["config"] = {key: value for key, value in config.items()
                          if key not in parameters or parameters[key].default is inspect.Parameter.empty
                          or json.loads(json.dumps(parameters[key].default, default=str)) != value}
    return node


def make_portable(path):
    """Rewrite a .keras file's config.json without default-valued arguments; the weights are untouched."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            if info.filename == "config.json":
                data = json.dumps(without_defaults(json.loads(data))).encode()
            archive.writestr(info, data)


def save_model_files(served_model, models_dir, name="mnist_cnn", onnx=True):
    """Save served_model (from deployable) as name.keras, reloaded in safe mode to check it, and, with onnx, as
    name.onnx. Returns the paths written and the reloaded Keras model."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    keras_path, onnx_path = models_dir / f"{name}.keras", models_dir / f"{name}.onnx"
    served_model.save(keras_path)
    make_portable(keras_path)
    reloaded = keras.saving.load_model(keras_path, safe_mode=True, compile=False)
    paths = [keras_path]
    if onnx:
        onnx_path.unlink(missing_ok=True)
        with warnings.catch_warnings(), native_stderr_silenced():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx asks NumPy for np.object, which NumPy 2 warns of
            served_model.export(onnx_path, format="onnx", verbose=False)
        paths.append(onnx_path)
    return paths, reloaded


def write_metadata(paths, metadata):
    """Write the metadata beside the first model file, with the SHA-256 and size of every file in paths, so that a
    model and metadata from different runs are refused (mnist_digits.load_metadata)."""
    files = {path.name: {"sha256": file_sha256(path), "bytes": path.stat().st_size} for path in paths}
    metadata = {**metadata, "file": paths[0].name, "files": files}
    metadata_file = paths[0].with_suffix(".json")
    metadata_file.write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata_file


def load_checked(path):
    """Load a .keras file in safe mode after checking its SHA-256 against the metadata beside it: the served model
    is studied in the one form that is served."""
    path = Path(path)
    metadata = json.loads(path.with_suffix(".json").read_text())
    expected = metadata["files"][path.name]["sha256"]
    if file_sha256(path) != expected:
        raise ValueError(f"{path.name}: its SHA-256 differs from the one in {path.with_suffix('.json').name}: "
                         "the model and its metadata come from different runs")
    return keras.saving.load_model(path, safe_mode=True, compile=False), metadata
