"""What every companion notebook does first: read the run settings, seed everything, print the versions and the
device (with how to switch a GPU on), decide where figures and models go, load and split the data, save figures."""
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from mnist_digits import data

REPO = Path(__file__).resolve().parents[1]
KAGGLE_WORKING = Path("/kaggle/working")
QUICK_TRAIN_LIMIT = 3_000  # quick mode (MNIST_QUICK=1, the tests): training images after the split
QUICK_BATCH_SIZE = 32
GPU_HINT = ("No GPU found: everything runs on the CPU, as timed in the notebook's introduction. In Colab, "
            "Runtime > Change runtime type > T4 GPU; on Kaggle, Settings > Accelerator > GPU.")


@dataclass
class Run:
    """One notebook run: its seed, its mode and its folders. Quick mode is a small test run whose outputs go to a
    temporary folder that the notebooks of one series share, so that a test run never overwrites the record."""

    seed: int = 42
    quick: bool = False
    kaggle_dir: str = ""
    data_dir: str = ""
    output_dir: Path = field(default_factory=Path)
    start: float = field(default_factory=time.perf_counter)

    @property
    def figures_dir(self):
        return self.output_dir / "figures"

    @property
    def models_dir(self):
        return self.output_dir / "models"

    def pick(self, full, quick):
        """A setting's value: `quick` in quick mode, else `full`."""
        return quick if self.quick else full

    def save_fig(self, name, tight=True):
        """Save the current Matplotlib figure as figures/<name>.png."""
        import matplotlib.pyplot as plt

        if tight:
            plt.tight_layout()
        plt.savefig(self.figures_dir / f"{name}.png", bbox_inches="tight")

    def load(self, validation_size=5_000, kaggle_test_size=6_000):
        """The data, validated, split and scaled: x_/y_ train, val and test (model input, n x 28 x 28 x 1 in [0, 1]),
        the raw uint8 images (train_full, test_raw) and, in Kaggle mode, Kaggle's unlabelled test images."""
        (x_full, y_full), (x_test_raw, y_test), kaggle_test = data.load_data(
            self.data_dir, self.kaggle_dir, self.pick(kaggle_test_size, min(kaggle_test_size, 1_000)), self.seed,
            exact_rows=not self.quick)
        (x_train, y_train), (x_val, y_val) = data.split(x_full, y_full, validation_size, self.seed)
        if self.quick:
            x_train, y_train = x_train[:QUICK_TRAIN_LIMIT], y_train[:QUICK_TRAIN_LIMIT]
        return SimpleNamespace(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                               x_test=data.to_model_input(x_test_raw), y_test=y_test, x_train_full=x_full,
                               y_train_full=y_full, x_test_raw=x_test_raw, kaggle_test=kaggle_test)

    def minutes(self):
        return (time.perf_counter() - self.start) / 60


def start(seed=42, quick=False, data_dir="", kaggle_dir="", output_dir=""):
    """Seed Python, NumPy and TensorFlow, print the versions and the device, and make the output folders.

    Outputs go to output_dir when given; otherwise to /kaggle/working on Kaggle, kaggle_output/ in Kaggle mode
    elsewhere (never over the MNIST record), a shared temporary folder in quick mode, and the repository's
    figures/ and models/ for a full MNIST run (the committed record).
    """
    from mnist_digits import training
    from mnist_digits.serving import native_stderr_silenced
    from mnist_digits.training import keras, tf

    quick = quick or os.environ.get("MNIST_QUICK", "") == "1"
    data_dir, kaggle_dir = data.data_dirs(data_dir, kaggle_dir)
    if output_dir:
        output = Path(output_dir)
    elif quick:
        output = Path(tempfile.gettempdir()) / ("mnist-quick-kaggle" if kaggle_dir else "mnist-quick")
    elif kaggle_dir:
        output = KAGGLE_WORKING if KAGGLE_WORKING.is_dir() else REPO / "kaggle_output"
    else:
        output = REPO
    run = Run(seed=seed, quick=quick, kaggle_dir=kaggle_dir, data_dir=data_dir, output_dir=output)
    run.figures_dir.mkdir(parents=True, exist_ok=True)
    run.models_dir.mkdir(parents=True, exist_ok=True)
    if quick:  # enough steps for batch normalisation's moving statistics to settle on so few images
        training.BATCH_SIZE = QUICK_BATCH_SIZE
    keras.utils.set_random_seed(seed)
    tf.get_logger().setLevel("ERROR")  # no tf.function retracing notices when several models are evaluated
    with native_stderr_silenced():  # TensorFlow's C++ core reports its CUDA probing on file descriptor 2
        devices = tf.config.list_physical_devices()
    print(f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, NumPy "
          f"{np.__version__}; {', '.join(d.device_type for d in devices)} on {platform.machine()} "
          f"({os.cpu_count()} cores)")
    if not any(d.device_type == "GPU" for d in devices):
        print(GPU_HINT)
    where = "a temporary folder" if quick else "the repository" if output == REPO else str(output)
    print(f"Mode: {'QUICK (test run)' if quick else 'full run'} on {'Kaggle' if kaggle_dir else 'MNIST'}; "
          f"figures and models go to {where}")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 100, "axes.titlesize": 11})
    return run
