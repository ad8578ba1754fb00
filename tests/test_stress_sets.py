"""The generators of mnist_digits.synthetic (training images, stress sets): deterministic, labelled, and with
training generators that differ from the held-out ones (fonts, shapes, skeletons, settings)."""
import importlib.util
import itertools

import numpy as np
import pytest
from conftest import REPO

import mnist_digits
from mnist_digits import synthetic
from mnist_digits.stress import StressSets


@pytest.fixture(scope="module")
def stress():
    return vars(synthetic)


@pytest.fixture(scope="module")
def digits(mnist):
    (x_test, y_test) = mnist[1]
    return x_test[:60].astype(np.float32) / 255, y_test[:60]


KINDS = ["drawn letters and symbols", "printed letters and symbols", "closed shapes", "scribbles and shapes", "noise"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("part", ["train", "validation", "test"])
def test_non_digits_are_deterministic_mnist_like_images(stress, kind, part):
    first = stress["make_non_digits"](kind, 12, part, seed=7)
    assert first.shape == (12, 28, 28) and first.dtype == np.float32
    assert np.array_equal(first, stress["make_non_digits"](kind, 12, part, seed=7)), "the same seed, other images"
    assert not np.array_equal(first, stress["make_non_digits"](kind, 12, part, seed=8)), "another seed, same images"
    assert first.min() >= 0 and first.max() <= 1 and (first.max(axis=(1, 2)) > 0.2).all()  # mnist_style: ink in [0, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_training_and_held_out_generators_differ(stress, kind):
    """Same seed, other part: the training generator must not make the held-out images."""
    train = stress["make_non_digits"](kind, 12, "train", seed=3)
    held_out = stress["make_non_digits"](kind, 12, "test", seed=3)
    assert np.abs(train - held_out).mean() > 0.05


def test_fonts_and_shapes_of_the_parts_are_disjoint(stress):
    fonts = stress["FONTS"]
    for a, b in itertools.combinations(fonts, 2):
        assert not set(fonts[a]) & set(fonts[b]), (a, b)
    families = {part: {name.split("-")[0].split(".")[0].rstrip("0123456789") for name in names}
                for part, names in fonts.items()}
    assert not families["train"] & (families["validation"] | families["test"])
    assert not set(stress["SHAPES"]["train"]) & set(stress["SHAPES"]["held_out"])
    assert not set(stress["CLOSED_SHAPES"]["train"]) & set(stress["CLOSED_SHAPES"]["held_out"])
    assert stress["STRESS_KINDS"] == KINDS
    for names in fonts.values():  # the fonts ship with Matplotlib, so Colab and Kaggle have them
        assert all((stress["FONT_DIR"] / name).is_file() for name in names)


def test_no_character_that_looks_like_a_digit(stress):
    lookalikes = set("0123456789OoQDIlijJTZzSsBbGgq")
    assert not lookalikes & set(stress["PRINTED_CHARACTERS"])
    assert not lookalikes & set(stress["STROKE_SHAPES"])


SHIFTS = ["thinner strokes", "thicker strokes", "elastic", "slanted", "16 x 16 and back", "8 x 8 and back",
          "binarised", "blurred", "thick pen strokes"]


@pytest.mark.parametrize("shift", SHIFTS)
def test_shifted_digits_are_deterministic_and_keep_their_labels(stress, digits, shift):
    images, labels = digits
    assert list(stress["SHIFTS"]) == SHIFTS
    shifted = stress["make_shifted"](images, shift, seed=11)
    assert shifted.shape == images.shape and shifted.dtype == np.float32
    assert np.array_equal(shifted, stress["make_shifted"](images, shift, seed=11))
    assert shifted.min() >= 0 and shifted.max() <= 1.0 + 1e-6
    # The committed model still reads most of them as their own label: the set's labels stay in step with its
    # images (a shuffled or mislabelled set would score about 10%). 8 x 8 is hard for any model, hence its bar.
    model = mnist_digits.load_model()
    accuracy = (model(shifted[..., None]).argmax(axis=1) == labels).mean()
    assert accuracy >= (0.4 if shift == "8 x 8 and back" else 0.85), accuracy


def test_style_digits_are_deterministic_balanced_and_read_as_their_labels(stress):
    images, labels = stress["make_style_digits"](60, "test", seed=5)
    assert images.shape == (60, 28, 28) and images.dtype == np.float32 and (np.bincount(labels) == 6).all()
    again, _ = stress["make_style_digits"](60, "test", seed=5)
    assert np.array_equal(images, again)
    train, _ = stress["make_style_digits"](60, "train", seed=5)
    assert np.abs(train - images).mean() > 0.05, "the training generator makes the held-out images"
    accuracy = (mnist_digits.load_model()(images[..., None]).argmax(axis=1) == labels).mean()
    assert accuracy >= 0.75, accuracy  # labels in step with the images (a shuffled set would score about 10%)


def test_style_skeletons_of_the_parts_are_disjoint(stress):
    glyphs = stress["STYLE_GLYPHS"]
    assert set(glyphs["train"]) == set(glyphs["held_out"]) == set(range(10))
    for digit in range(10):
        held_out = [repr(variant) for variant in glyphs["held_out"][digit]]
        assert not set(held_out) & {repr(variant) for variant in glyphs["train"][digit]}, digit


def test_scanned_digits_are_deterministic_and_read_as_their_labels(stress, digits):
    images, labels = digits
    held_out = stress["make_scanned"](images, held_out=True, seed=9)
    assert held_out.shape == images.shape and held_out.dtype == np.float32
    assert np.array_equal(held_out, stress["make_scanned"](images, held_out=True, seed=9))
    assert np.abs(held_out - stress["make_scanned"](images, held_out=False, seed=9)).mean() > 0.02
    accuracy = (mnist_digits.load_model()(held_out[..., None]).argmax(axis=1) == labels).mean()
    assert accuracy >= 0.75, accuracy


def test_a_plain_ring_stays_a_zero(stress):
    """Closed shapes with marks inside are trained as non-digits; an empty ring is still a 0 to the served model."""
    rng = np.random.default_rng(4)
    rings = np.stack([stress["pen_drawing"]([stress["RING"]], rng, held_out=True) for _ in range(10)])
    probabilities = mnist_digits.load_model()(rings[..., None])
    assert (probabilities.argmax(axis=1) == 0).mean() >= 0.9, probabilities.argmax(axis=1)


def test_the_parts_never_share_a_seed():
    seeds = {part: {synthetic.stress_seed(part, number, seed) for number in range(100) for seed in (1, 42)}
             for part in synthetic.PARTS}
    for a, b in itertools.combinations(synthetic.PARTS, 2):
        assert not seeds[a] & seeds[b], (a, b)


def nearest_distances(images, others):
    """For each image, the mean absolute pixel difference to the nearest of the others."""
    flat, other_flat = images.reshape(len(images), -1), others.reshape(len(others), -1)
    return np.array([np.abs(other_flat - image).mean(axis=1).min() for image in flat])


def test_training_images_and_stress_sets_share_no_image(digits):
    """The synthetic training images come from the training generators; the stress sets, from the held-out ones
    with other seeds for each part: no training image reappears in a stress set, nor a validation one in the test."""
    images, labels = digits
    training = synthetic.make_synthetic_training_data(images[..., np.newaxis], labels, seed=42, non_digits=50,
                                                      style_digits=20, scanned_digits=20)
    sets = StressSets((images[:30], labels[:30]), (images[30:], labels[30:]), validation_size=10, test_size=10)
    trained = np.concatenate([part_images for part_images, _ in training.values()])
    for part in ("validation", "test"):
        held_out = np.concatenate([*(sets.digits[key][0] for key in sets.digits if key[0] == part),
                                   *(sets.non_digits[key] for key in sets.non_digits if key[0] == part)])
        assert nearest_distances(held_out, trained).min() > 0.002, part
    for kind in synthetic.STRESS_KINDS:
        assert nearest_distances(sets.non_digits["test", kind], sets.non_digits["validation", kind]).min() > 0.002


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_training", REPO / "scripts" / "benchmark_training.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    return benchmark


def test_each_ablation_arm_trains_on_its_parts(digits):
    """scripts/benchmark_training.py --ablation trains the served recipe on four training sets: each arm is the
    recipe's training set with parts left out."""
    training = pytest.importorskip("mnist_digits.training")
    images, labels = digits[0][..., np.newaxis], digits[1]
    extra = synthetic.make_synthetic_training_data(images, labels, non_digits=10, style_digits=6, scanned_digits=4)
    arms = {arm: training.improved_training_data(images, labels, extra, *parts)
            for arm, parts in load_benchmark().ABLATION_ARMS.items()}
    assert [len(data) for data, *_ in arms.values()] == [60, 70, 70, 80]
    recipe, targets, weights = arms["both (the notebook's recipe)"]
    assert recipe.shape == (80, 28, 28, 1) and np.array_equal(recipe[:60], images)
    assert np.array_equal(targets[:70].argmax(axis=1), np.r_[labels, extra["other styles"][1], extra["scanned"][1]])
    assert np.allclose(targets[70:], 0.1)  # a non-digit's target: the uniform distribution
    assert np.array_equal(weights, np.r_[np.ones(70), np.full(10, training.OE_WEIGHT)])
    assert np.array_equal(arms["MNIST only"][0], images)


class Recorder:
    """Stands in for the network in train_improved_cnn: keeps how it is compiled and what it is fitted on."""

    def __init__(self, seed, name, policy, elastic_pixels, widths):
        self.seed, self.name, self.elastic_pixels, self.widths = seed, name, elastic_pixels, widths

    def compile(self, **kwargs):
        self.compiled = kwargs

    def fit(self, x, y=None, sample_weight=None, **kwargs):
        self.fitted = x, y, sample_weight, kwargs


@pytest.fixture
def recorded(digits, monkeypatch):
    """train_improved_cnn's module with a Recorder for the network, and 60 digits with 20 synthetic images."""
    training = pytest.importorskip("mnist_digits.training")
    monkeypatch.setattr(training, "build_improved_cnn", Recorder)
    images, labels = digits[0][..., np.newaxis], digits[1]
    extra = synthetic.make_synthetic_training_data(images, labels, non_digits=10, style_digits=6, scanned_digits=4)
    return training, images, labels, extra


def test_the_previous_recipe_fits_what_it_was_given(recorded):
    """train_improved_cnn with the previous recipe and without validation data (Kaggle mode's refit) fits the whole
    training set each epoch, for the epochs asked, in the recipe's batches, without a weight average."""
    training, images, labels, extra = recorded
    model, history, _ = training.train_improved_cnn((images, labels), None, extra, seed=7, epochs=3, name="probe",
                                                    verbose=0, recipe=training.PREVIOUS_RECIPE)
    data, targets, weights, options = model.fitted
    assert history is None and model.seed == 7 and len(data) == len(targets) == len(weights) == 80
    assert options == {"epochs": 3, "batch_size": training.BATCH_SIZE, "verbose": 0, "validation_data": None,
                       "callbacks": []}
    assert not model.compiled["optimizer"].use_ema
    assert model.elastic_pixels == training.ELASTIC_PIXELS and model.widths == (32, 64)  # the network as before


def test_the_fast_recipe_draws_a_fresh_share_of_the_synthetic_images_each_epoch(recorded):
    """With FAST_RECIPE every epoch holds all the MNIST digits and a new random share of the synthetic images, each
    once, with their targets and weights; the optimizer keeps an average of the weights."""
    training, images, labels, extra = recorded
    model, _, _ = training.train_improved_cnn((images, labels), None, extra, seed=7, name="probe", verbose=0,
                                              recipe=training.FAST_RECIPE)
    batches, _, _, options = model.fitted
    assert options["epochs"] == training.FAST_RECIPE.epochs and model.compiled["optimizer"].use_ema
    assert batches.batch_size == training.FAST_RECIPE.batch_size
    assert (model.elastic_pixels, model.widths) == (training.FAST_RECIPE.elastic_pixels, training.FAST_RECIPE.widths)
    all_images, all_targets, all_weights = training.improved_training_data(images, labels, extra)
    flat = all_images.reshape(len(all_images), -1)
    drawn = []
    for _ in range(2):
        epoch = [batches[index] for index in range(len(batches))]
        epoch_images, epoch_targets, epoch_weights = (np.concatenate(part) for part in zip(*epoch))
        rows = [int(np.flatnonzero((flat == image.ravel()).all(axis=1))[0]) for image in epoch_images]
        assert len(set(rows)) == len(rows) == 60 + round(training.FAST_RECIPE.synthetic_share * 20)
        assert set(range(60)) <= set(rows), "an MNIST digit left out"
        assert np.array_equal(epoch_targets, all_targets[rows]) and np.array_equal(epoch_weights, all_weights[rows])
        drawn.append(set(rows) - set(range(60)))
        batches.on_epoch_end()
    assert drawn[0] != drawn[1], "the same synthetic images in two epochs"


def test_quick_mode_trains_either_recipe_in_its_small_batches(recorded, monkeypatch):
    """notebook.start's quick mode lowers training.BATCH_SIZE; both recipes then train in those batches, so that
    batch normalisation gets enough steps on a few thousand images."""
    training, images, labels, extra = recorded
    monkeypatch.setattr(training, "BATCH_SIZE", 32)
    for recipe in (training.PREVIOUS_RECIPE, training.FAST_RECIPE):
        model, _, _ = training.train_improved_cnn((images, labels), None, extra, seed=7, name="probe", verbose=0,
                                                  recipe=recipe)
        data, _, _, options = model.fitted
        assert options.get("batch_size", getattr(data, "batch_size", None)) == 32, recipe


def test_with_validation_data_each_recipe_keeps_and_validates_the_weights_it_says(recorded, monkeypatch):
    """The previous recipe keeps its best epoch on validation; the fast one keeps the average of the weights, and
    validates that average each epoch, so that its history reports the weights that are kept."""
    training, images, labels, _ = recorded
    monkeypatch.setattr(training, "history_frame", lambda history: None)  # Recorder.fit returns no History
    kept = {}
    for recipe in (training.PREVIOUS_RECIPE, training.FAST_RECIPE):
        model, _, _ = training.train_improved_cnn((images, labels), (images[:10], labels[:10]), seed=7, name="probe",
                                                  verbose=0, recipe=recipe)
        kept[recipe] = model.fitted[3]["callbacks"]
    [stop] = kept[training.PREVIOUS_RECIPE]
    assert isinstance(stop, training.keras.callbacks.EarlyStopping) and stop.restore_best_weights
    [swap] = kept[training.FAST_RECIPE]
    assert isinstance(swap, training.keras.callbacks.SwapEMAWeights) and not swap.swap_on_epoch


def test_the_improved_cnn_has_the_widths_and_the_augmentation_asked():
    training = pytest.importorskip("mnist_digits.training")
    for widths, elastic_pixels in [((32, 64), 1.0), ((16, 48), 0.0)]:
        model = training.build_improved_cnn(elastic_pixels=elastic_pixels, widths=widths)
        filters = [layer.filters for layer in model.layers if isinstance(layer, training.layers.Conv2D)]
        assert filters == [widths[0], 32, widths[1], widths[1], 64, 128]
        assert model.get_layer("augment").elastic_pixels == elastic_pixels and model.output_shape == (None, 10)


def test_trust_scores_choose_the_rule_on_validation_and_report_both_parts(monkeypatch):
    """benchmark_training.py --recipes scores each network's trust: the rule chosen once, on the stress sets'
    validation parts, then per part MNIST's coverage, the other digit sets' mean coverage and mean share called not
    a digit, and the worst kind of non-digit."""
    pytest.importorskip("mnist_digits.training")
    import pandas as pd

    from mnist_digits import export, stress
    monkeypatch.setattr(export, "deployable", lambda model: model)
    rows = ["MNIST", *stress.DIGIT_SETS, *synthetic.STRESS_KINDS]

    class Sets:
        def probabilities(self, predict):
            return {"predicted": predict(None)}

        def choose_rule(self, probabilities):
            assert probabilities == {"predicted": "probabilities"}
            return {"unsure_below": 0.9}, {}

        def table(self, probabilities, rule, part):
            share = {"validation": 0.5, "test": 0.25}[part]
            table = pd.DataFrame({"coverage": share, "not_a_digit": share / 10}, index=rows)
            table.loc["MNIST"] = 0.97, 0.0
            table.loc[stress.DIGIT_SETS[0], "coverage"] = 0.0  # so that a mean differs from a largest or a first
            table.loc[synthetic.STRESS_KINDS, "coverage"] = share / 10
            table.loc["closed shapes", "coverage"] = share / 5  # the worst kind
            return table

    class Model:
        def predict(self, images, batch_size, verbose):
            return "probabilities"

    kept = (len(stress.DIGIT_SETS) - 1) / len(stress.DIGIT_SETS)
    assert load_benchmark().trust_scores(Model(), Sets()) == {
        "unsure_below": 0.9,
        "val_mnist_coverage": 0.97, "val_digit_sets_coverage": round(0.5 * kept, 4), "val_digit_sets_not_a_digit": 0.05,
        "val_non_digits_accepted": 0.1,
        "test_mnist_coverage": 0.97, "test_digit_sets_coverage": round(0.25 * kept, 4),
        "test_digit_sets_not_a_digit": 0.025, "test_non_digits_accepted": 0.05}
