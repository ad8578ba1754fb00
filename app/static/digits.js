// The model put to use in the page, as the package mnist_digits does it in Python: preprocess an image like MNIST and decide
// whether the answer is a digit, unsure, or not a digit. This is the page's only copy of both; a test in Chromium
// holds them equal to the Python (tests/test_site.py). Arithmetic that NumPy does in float32 is rounded to float32
// here too (Math.fround), and the resize is Pillow's LANCZOS in its own fixed-point arithmetic, so that the two
// give the same 28 x 28 input.
"use strict";

const f32 = Math.fround;

export class DigitError extends Error {}

// Python's round() and NumPy's np.round: halves go to the even neighbour.
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// NumPy's float32 sum of a contiguous run: pairwise, with eight accumulators for runs of 8 to 128 values.
function pairwiseSum(values, start, n) {
  if (n < 8) {
    let sum = -0;
    for (let i = 0; i < n; i++) sum = f32(sum + values[start + i]);
    return sum;
  }
  if (n <= 128) {
    const r = [];
    for (let j = 0; j < 8; j++) r.push(values[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] = f32(r[j] + values[start + i + j]);
    }
    let sum = f32(f32(f32(r[0] + r[1]) + f32(r[2] + r[3])) + f32(f32(r[4] + r[5]) + f32(r[6] + r[7])));
    for (; i < n; i++) sum = f32(sum + values[start + i]);
    return sum;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return f32(pairwiseSum(values, start, half) + pairwiseSum(values, start + half, n - half));
}

function median(values) {
  const sorted = Float32Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : f32(f32(sorted[middle - 1] + sorted[middle]) / 2);
}

// Pillow's LANCZOS filter and resampling (src/libImaging/Resample.c): coefficients in double, normalised to
// integers with 22 fractional bits, one pass per axis, each rounded and clipped to 0-255.
const PRECISION_BITS = 22;

function sinc(x) {
  if (x === 0) return 1;
  const y = x * Math.PI;
  return Math.sin(y) / y;
}

function lanczos(x) {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const inverse = 1 / filterScale;
  const bounds = [];
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - first;
    const weights = [];
    let total = 0;
    for (let x = 0; x < count; x++) {
      const w = lanczos((x + first - center + 0.5) * inverse);
      weights.push(w);
      total += w;
    }
    const fixed = weights.map((w) => {
      const normalised = total !== 0 ? w / total : w;
      return Math.trunc(normalised < 0 ? -0.5 + normalised * (1 << PRECISION_BITS)
                                       : 0.5 + normalised * (1 << PRECISION_BITS));
    });
    bounds.push([first, fixed]);
  }
  return bounds;
}

function clip8(sum) {
  const value = Math.floor(sum / (1 << PRECISION_BITS));
  return value < 0 ? 0 : value > 255 ? 255 : value;
}

function resizeRows(image, width, height, newWidth) {  // the horizontal pass
  const columns = coefficients(width, newWidth);
  const out = new Uint8Array(newWidth * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < newWidth; x++) {
      const [first, weights] = columns[x];
      let sum = 1 << (PRECISION_BITS - 1);
      for (let k = 0; k < weights.length; k++) sum += image[y * width + first + k] * weights[k];
      out[y * newWidth + x] = clip8(sum);
    }
  }
  return out;
}

function resizeColumns(image, width, height, newHeight) {  // the vertical pass
  const rows = coefficients(height, newHeight);
  const out = new Uint8Array(width * newHeight);
  for (let y = 0; y < newHeight; y++) {
    const [first, weights] = rows[y];
    for (let x = 0; x < width; x++) {
      let sum = 1 << (PRECISION_BITS - 1);
      for (let k = 0; k < weights.length; k++) sum += image[(first + k) * width + x] * weights[k];
      out[y * width + x] = clip8(sum);
    }
  }
  return out;
}

// Resize a uint8 grayscale image (row-major) as Pillow's Image.resize(size, Image.Resampling.LANCZOS) does. Like
// Pillow, it runs the vertical pass first when the height shrinks by more than twice as many pixels as the width.
export function resizeLanczos(pixels, width, height, newWidth, newHeight) {
  const horizontalFirst = !(height - newHeight > 0 && height - newHeight > (width - newWidth) * 2);
  let image = pixels;
  if (horizontalFirst) {
    if (newWidth !== width) image = resizeRows(image, width, height, newWidth);
    if (newHeight !== height) image = resizeColumns(image, newWidth, height, newHeight);
  } else {
    if (newHeight !== height) image = resizeColumns(image, width, height, newHeight);
    if (newWidth !== width) image = resizeRows(image, width, newHeight, newWidth);
  }
  return image === pixels ? Uint8Array.from(pixels) : image;
}

const BYTE = Float32Array.from({ length: 256 }, (_, v) => f32(v / 255));

// RGBA bytes of an image (as a canvas gives them) -> the 28 x 28 model input, a Float32Array in [0, 1], white ink
// on black, as mnist_digits.mnist_style makes it. Throws DigitError with the same messages.
export function mnistStyle(rgba, width, height, { minSide = 8, minContrast = 0.15 } = {}) {
  if (Math.min(width, height) < minSide) {
    throw new DigitError(`image is ${width}x${height} pixels, too small to hold a digit ` +
                         `(at least ${minSide}x${minSide})`);
  }
  const n = width * height;
  let gray = new Float32Array(n);
  const alpha = new Float32Array(n);
  const [wr, wg, wb] = [f32(0.299), f32(0.587), f32(0.114)];
  let minAlpha = 1;
  for (let i = 0; i < n; i++) {
    gray[i] = f32(f32(f32(BYTE[rgba[4 * i]] * wr) + f32(BYTE[rgba[4 * i + 1]] * wg)) + f32(BYTE[rgba[4 * i + 2]] * wb));
    alpha[i] = BYTE[rgba[4 * i + 3]];
    minAlpha = Math.min(minAlpha, alpha[i]);
  }
  if (minAlpha < 1) {  // transparency: put the strokes on a background of the opposite brightness
    let opaqueSum = 0, opaqueCount = 0;
    for (let i = 0; i < n; i++) {
      if (alpha[i] > 0.5) { opaqueSum += gray[i]; opaqueCount++; }
    }
    const paper = opaqueCount === 0 || opaqueSum / opaqueCount < 0.5 ? 1 : 0;
    for (let i = 0; i < n; i++) gray[i] = f32(f32(gray[i] * alpha[i]) + f32(paper * f32(1 - alpha[i])));
  }
  const border = [];
  for (let x = 0; x < width; x++) border.push(gray[x], gray[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) border.push(gray[y * width], gray[y * width + width - 1]);
  let background = median(border);
  if (background > 0.5) {  // dark ink on light paper: invert so that ink is bright
    gray = gray.map((g) => f32(1 - g));
    background = f32(1 - background);
  }
  const ink = gray.map((g) => Math.max(f32(g - background), 0));
  const brightest = ink.reduce((a, b) => Math.max(a, b), 0);
  if (brightest < f32(minContrast)) throw new DigitError("no ink found: the image is blank or has almost no contrast");
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      ink[i] = f32(ink[i] / brightest);
      if (ink[i] > f32(0.3)) {  // the ink's bounding box, ignoring faint noise
        top = Math.min(top, y); bottom = Math.max(bottom, y);
        left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  const boxHeight = bottom - top + 1, boxWidth = right - left + 1;
  const box = new Uint8Array(boxWidth * boxHeight);
  for (let y = 0; y < boxHeight; y++) {
    for (let x = 0; x < boxWidth; x++) {
      const value = ink[(top + y) * width + left + x];
      box[y * boxWidth + x] = value < f32(0.1) ? 0 : roundHalfEven(f32(value * 255));
    }
  }
  const scale = 20 / Math.max(boxHeight, boxWidth);
  const smallWidth = Math.max(1, roundHalfEven(boxWidth * scale));
  const smallHeight = Math.max(1, roundHalfEven(boxHeight * scale));
  const small = Float32Array.from(resizeLanczos(box, boxWidth, boxHeight, smallWidth, smallHeight), (v) => BYTE[v]);
  const total = pairwiseSum(small, 0, small.length);
  if (total === 0) throw new DigitError("no ink left after scaling the digit down");
  let rowMoment = 0, colMoment = 0;
  for (let y = 0; y < smallHeight; y++) rowMoment += y * pairwiseSum(small, y * smallWidth, smallWidth);
  for (let x = 0; x < smallWidth; x++) {
    let column = 0;
    for (let y = 0; y < smallHeight; y++) column = f32(column + small[y * smallWidth + x]);
    colMoment += x * column;
  }
  // MNIST puts the centre of mass at (14, 14)
  const row = Math.min(Math.max(roundHalfEven(14 - rowMoment / total), 0), 28 - smallHeight);
  const col = Math.min(Math.max(roundHalfEven(14 - colMoment / total), 0), 28 - smallWidth);
  const canvas = new Float32Array(28 * 28);
  for (let y = 0; y < smallHeight; y++) {
    canvas.set(small.subarray(y * smallWidth, (y + 1) * smallWidth), (row + y) * 28 + col);
  }
  return canvas;
}

// The decision rule from the model's metadata (mnist_cnn.json), checked as mnist_digits.load_metadata checks it.
export function ruleFrom(metadata) {
  const source = metadata && typeof metadata === "object" ? ("rule" in metadata ? metadata.rule : metadata) : null;
  const rule = {
    unsure_below: Number(source?.unsure_below),
    not_a_digit_below: Number(source?.not_a_digit_below ?? 0),
    not_a_digit_score: String(source?.not_a_digit_score ?? "max_probability"),
  };
  if (!(rule.unsure_below >= 0 && rule.unsure_below <= 1) || !(rule.not_a_digit_below >= 0 &&
      rule.not_a_digit_below <= 2)) {
    throw new Error("the model's metadata has no valid decision rule");
  }
  if (!["max_probability", "top_two_mass"].includes(rule.not_a_digit_score)) {
    throw new Error(`unknown not_a_digit_score ${rule.not_a_digit_score}`);
  }
  return rule;
}

// The sum of the two highest probabilities: near 1 for a digit, even a doubtful '4 or 9', low when spread.
export function topTwoMass(probabilities) {
  const sorted = Array.from(probabilities).sort((a, b) => b - a);
  return sorted[0] + sorted[1];
}

// 'digit', 'unsure' or 'not_a_digit' for ten probabilities, as mnist_digits.verdicts decides.
export function verdict(probabilities, rule) {
  const highest = Math.max(...probabilities);
  if (highest >= rule.unsure_below) return "digit";
  const score = rule.not_a_digit_score === "top_two_mass" ? topTwoMass(probabilities) : highest;
  return score < rule.not_a_digit_below ? "not_a_digit" : "unsure";
}

// The answer the API gives (PredictionResponse), made in the page from the model's ten probabilities.
export function answer(probabilities, modelInput, rule) {
  const rounded = Array.from(probabilities, (p) => Math.round(p * 1e4) / 1e4);
  const order = rounded.map((p, d) => d).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  const decided = verdict(Array.from(probabilities), rule);
  const rows = [];
  for (let y = 0; y < 28; y++) rows.push(Array.from(modelInput.subarray(y * 28, (y + 1) * 28)));
  return {
    digit: order[0], probability: rounded[order[0]], probabilities: rounded,
    top3: order.slice(0, 3).map((d) => ({ digit: d, probability: rounded[d] })),
    verdict: decided, unsure: decided !== "digit", model_input: rows,
  };
}
