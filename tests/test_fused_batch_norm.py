"""The package's FusedBatchNorm computes what Keras's BatchNormalization computes, in training and at inference."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def fused_batch_norm():
    from mnist_digits.training import FusedBatchNorm
    return FusedBatchNorm


def pair(fused_batch_norm, shape, seed=0):
    """A FusedBatchNorm and a BatchNormalization with the same (non-trivial) weights."""
    rng = np.random.default_rng(seed)
    fused, plain = fused_batch_norm(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    channels = shape[-1]
    weights = [rng.uniform(0.5, 1.5, channels), rng.normal(0, 1, channels), rng.normal(0, 1, channels),
               rng.uniform(0.5, 2.0, channels)]
    for layer in (fused, plain):
        layer.build(shape)
        layer.set_weights(weights)
    return fused, plain


def test_training_step_matches_keras(fused_batch_norm):
    shape = (32, 7, 7, 16)
    fused, plain = pair(fused_batch_norm, shape)
    inputs = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, shape), tf.float32)
    upstream = tf.constant(np.random.default_rng(2).normal(0, 1, shape), tf.float32)
    results = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(outputs * upstream)
        gradients = tape.gradient(loss, [inputs, layer.gamma.value, layer.beta.value])
        results.append((outputs.numpy(), [g.numpy() for g in gradients]))
    (fused_out, fused_grads), (plain_out, plain_grads) = results
    np.testing.assert_allclose(fused_out, plain_out, atol=1e-4)
    for fused_grad, plain_grad in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(fused_grad, plain_grad, atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-5)
    # the fused kernel keeps the unbiased batch variance (n / (n - 1)), Keras the biased one: 1 in 1,567 here
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-3)
    assert not np.allclose(fused.moving_mean.numpy(), pair(fused_batch_norm, shape)[0].moving_mean.numpy())


def test_inference_is_keras_own(fused_batch_norm):
    shape = (8, 5, 5, 4)
    fused, plain = pair(fused_batch_norm, shape)
    inputs = tf.constant(np.random.default_rng(3).normal(0, 1, shape), tf.float32)
    np.testing.assert_array_equal(fused(inputs, training=False).numpy(), plain(inputs, training=False).numpy())
    np.testing.assert_array_equal(fused.moving_mean.numpy(), plain.moving_mean.numpy())  # no update at inference


def test_bfloat16_activations_keep_their_type(fused_batch_norm):
    shape = (16, 6, 6, 8)
    fused, plain = fused_batch_norm(dtype="mixed_bfloat16"), keras.layers.BatchNormalization(dtype="mixed_bfloat16")
    inputs = tf.cast(tf.constant(np.random.default_rng(4).normal(1.0, 3.0, shape), tf.float32), tf.bfloat16)
    fused_out, plain_out = fused(inputs, training=True), plain(inputs, training=True)
    assert fused_out.dtype == plain_out.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(fused_out, tf.float32).numpy(), tf.cast(plain_out, tf.float32).numpy(),
                               atol=0.05)
    assert fused.moving_mean.dtype == "float32"
