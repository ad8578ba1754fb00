"""Attributions (TensorFlow): which pixels drive a decision, by three methods that work very differently, and the
deletion test that measures how faithful each one is."""
import itertools

import numpy as np

from mnist_digits.training import keras, tf


class Explainer:
    """SmoothGrad, Integrated Gradients and occlusion for a Keras model that ends in a softmax Dense layer."""

    def __init__(self, model, seed=42):
        self.model, self.seed = model, seed
        self.penultimate = keras.Model(model.inputs[0], model.layers[-2].output)  # what the softmax layer reads
        self.kernel = tf.cast(model.layers[-1].kernel, tf.float32)
        self.bias = tf.cast(model.layers[-1].bias, tf.float32)

    def class_score_gradients(self, images, classes):
        """Gradient of each image's class logit (before the softmax saturates it) with respect to its pixels."""
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = tf.cast(self.penultimate(images, training=False), tf.float32) @ self.kernel + self.bias
            score = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
        return tape.gradient(score, images).numpy()[..., 0]

    def smoothgrad(self, images, classes, copies=16, noise=0.1):
        rng = np.random.default_rng(self.seed)
        return sum(np.abs(self.class_score_gradients(images + rng.normal(0, noise, images.shape).astype(np.float32),
                                                     classes)) for _ in range(copies)) / copies

    def integrated_gradients(self, images, classes, steps=32):
        """Midpoint Riemann sum of the gradients on the path from a black image to the digit, times the pixels."""
        path = sum(self.class_score_gradients(alpha * images, classes) for alpha in (np.arange(steps) + 0.5) / steps)
        return images[..., 0] * path / steps

    def class_probability(self, images, classes):
        probabilities = keras.ops.convert_to_numpy(self.model(images, training=False)).astype(np.float32)
        return probabilities[np.arange(len(classes)), classes]

    def occlusion(self, images, classes, patch=4, stride=2):
        """Mean drop of the class probability over the black patches that cover each pixel."""
        base = self.class_probability(images, classes)
        drop, covered = np.zeros(images.shape[:3], np.float32), np.zeros((28, 28), np.float32)
        for top, left in itertools.product(range(0, 28 - patch + 1, stride), repeat=2):
            occluded = images.copy()
            occluded[:, top:top + patch, left:left + patch] = 0.0
            drop[:, top:top + patch, left:left + patch] += (base - self.class_probability(occluded, classes)
                                                            )[:, None, None]
            covered[top:top + patch, left:left + patch] += 1
        return drop / covered

    def methods(self):
        return {"SmoothGrad": self.smoothgrad, "Integrated Gradients": self.integrated_gradients,
                "Occlusion": self.occlusion}

    def deletion_curve(self, images, classes, attributions, fractions):
        """Mean class probability after blacking out the top-attributed fraction of the pixels, for each fraction:
        a faithful map makes it fall fast."""
        order = np.argsort(-attributions.reshape(len(images), -1), axis=1, kind="stable")
        curve = []
        for fraction in fractions:
            deleted = images.reshape(len(images), -1).copy()
            np.put_along_axis(deleted, order[:, :round(fraction * 784)], 0.0, axis=1)
            curve.append(self.class_probability(deleted.reshape(images.shape), classes).mean())
        return np.array(curve)
