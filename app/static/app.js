// The drawing page. It answers in the browser: the model runs in onnxruntime-web's WebAssembly backend on one
// thread, so no server and no special headers are needed, and nothing leaves the machine. When the runtime or the
// model cannot load, and the page was served by the app (python -m app), it asks the app's API instead.
// ?engine=server always asks the API; ?engine=browser never does.
import { DigitError, answer, mnistStyle, ruleFrom } from "./digits.js";

const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d", { willReadFrequently: true });
const preview = document.getElementById("preview");
const statusLine = document.getElementById("status");
const errorLine = document.getElementById("error");
const engineLine = document.getElementById("engine");
const digitOut = document.getElementById("digit");
const bars = document.getElementById("bars");
const fileInput = document.getElementById("file");
const dropzone = document.getElementById("dropzone");
const STROKE_WIDTH = canvas.width / 12;  // MNIST strokes are about a tenth of the digit's height
const DEBOUNCE_MS = 250;
const MAX_PIXELS = 25_000_000;  // as the API: a larger image would take too much memory to decode
const MODEL_URL = new URL("models/mnist_cnn.onnx", document.baseURI);
const METADATA_URL = new URL("models/mnist_cnn.json", document.baseURI);
const API_URL = new URL("api/predict", document.baseURI);

let strokes = [];
let current = null;
let timer = null;
let latestRequest = 0;
let requested = 0;  // predictions started, and those still pending: kept on <body> for tests and in aria-busy
let pending = 0;
let strokeEnded = null;  // when the last pen-up happened, for the time to the answer (data-answer-ms)

function track(change) {
  if (change > 0) requested++;
  pending += change;
  document.body.dataset.requested = requested;
  document.body.dataset.pending = pending;
  document.getElementById("answer").setAttribute("aria-busy", String(pending > 0));
}

async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) return null;  // only in secure contexts (https, localhost)
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchOk(url, kind) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname}: ${response.status} ${response.statusText}`);
  return kind === "json" ? response.json() : response.arrayBuffer();
}

// An image file's pixels as RGBA bytes, as the browser decodes it (EXIF orientation applied). A canvas stores
// them with premultiplied alpha, so partly transparent pixels can come back a level or two off.
async function decodeImage(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    throw new DigitError("not an image format the browser can read");
  }
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS) {
    throw new DigitError(`the image is too large to decode safely (${width}x${height} pixels)`);
  }
  const scratch = new OffscreenCanvas(width, height).getContext("2d", { willReadFrequently: true });
  scratch.drawImage(bitmap, 0, 0);
  return { data: scratch.getImageData(0, 0, width, height).data, width, height };
}

// The model in the page: the rule and its thresholds come from the model's metadata file, as in mnist_digits.
async function browserEngine() {
  const ort = await import("./ort/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer, so no cross-origin-isolation headers: any static host
  ort.env.wasm.wasmPaths = new URL("ort/", import.meta.url).href;
  const [model, metadata] = await Promise.all([fetchOk(MODEL_URL, "bytes"), fetchOk(METADATA_URL, "json")]);
  const described = metadata.files?.["mnist_cnn.onnx"]?.sha256;
  const actual = described ? await sha256(model) : null;
  if (described && actual && described !== actual) {
    throw new Error("mnist_cnn.json does not describe this model file (SHA-256 differs)");
  }
  const rule = ruleFrom(metadata);
  const session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;

  async function classify(rgba, width, height) {
    const input = mnistStyle(rgba, width, height);
    const output = await session.run({ [inputName]: new ort.Tensor("float32", input, [1, 28, 28, 1]) });
    return answer(output[outputName].data, input, rule);
  }

  return {
    name: "browser",
    describe: `Runs in your browser: onnxruntime-web ${ort.env.versions.web} (WebAssembly, one thread); ` +
              "nothing is uploaded.",
    classify,  // for the tests: RGBA bytes -> the answer
    async run(inputs, count) {  // for the tests: `count` 28 x 28 inputs -> their probabilities, 10 each
      const output = await session.run({ [inputName]: new ort.Tensor("float32", inputs, [count, 28, 28, 1]) });
      return output[outputName].data;
    },
    classifyDrawing() {
      return classify(pen.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
    },
    decode: decodeImage,  // for the tests: the RGBA pixels the page reads from a file
    async classifyFile(file) {
      const { data, width, height } = await decodeImage(file);
      return classify(data, width, height);
    },
  };
}

// The app's HTTP API, which runs the same model with the same preprocessing and rule in Python.
function serverEngine(reason) {
  async function post(body, headers) {
    let response;
    try {
      response = await fetch(API_URL, { method: "POST", body, headers });
    } catch (err) {
      throw new Error(`no answer from the server (${err.message})`);
    }
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new DigitError(reply.error || `the server answered ${response.status}`);
    return reply;
  }

  return {
    name: "server",
    describe: `Answers from the server's API${reason ? ` (the in-browser runtime did not load: ${reason})` : ""}.`,
    async classifyDrawing() {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
      return post(blob, { "Content-Type": "image/png" });
    },
    classifyFile(file) {
      const form = new FormData();
      form.append("file", file, file.name);
      return post(form, {});
    },
  };
}

async function apiAnswers() {
  try {
    return (await fetch(new URL("api/health", document.baseURI))).ok;
  } catch {
    return false;
  }
}

async function chooseEngine() {
  const wanted = new URLSearchParams(location.search).get("engine");
  if (wanted === "server") return serverEngine();
  try {
    return await browserEngine();
  } catch (err) {
    const reason = err.message || String(err);
    if (wanted !== "browser" && await apiAnswers()) return serverEngine(reason);
    throw new Error(`the model could not be loaded in this browser (${reason})`);
  }
}

const engine = chooseEngine();
engine.then((chosen) => {
  document.body.dataset.readyMs = performance.now().toFixed(1);  // since the page was opened
  document.body.dataset.engine = chosen.name;
  engineLine.textContent = chosen.describe;
  document.getElementById("api-note").hidden = chosen.name !== "server";
  window.digitEngine = chosen;  // for the tests and the benchmark
}, (err) => {
  document.body.dataset.engine = "none";
  showError(err.message);
  statusLine.textContent = "No prediction.";
});

for (let d = 0; d < 10; d++) {
  const item = document.createElement("li");
  item.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span>` +
                   `<span class="pct">–</span>`;
  bars.appendChild(item);
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function paint(stroke) {
  pen.beginPath();
  pen.moveTo(...stroke[0]);
  for (const p of stroke.slice(1)) pen.lineTo(...p);
  if (stroke.length === 1) pen.lineTo(stroke[0][0] + 0.1, stroke[0][1]);  // a dot
  pen.stroke();
}

function redraw() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  pen.strokeStyle = "#000";
  pen.lineWidth = STROKE_WIDTH;
  pen.lineCap = pen.lineJoin = "round";
  strokes.forEach(paint);
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  current = [point(event)];
  strokes.push(current);
  paint(current);
});
canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  const next = point(event);
  const last = current[current.length - 1];
  current.push(next);
  pen.beginPath();
  pen.moveTo(...last);
  pen.lineTo(...next);
  pen.stroke();
  clearTimeout(timer);
  timer = setTimeout(predictDrawing, DEBOUNCE_MS);  // update while drawing, at most every pause
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (!current) return;
    current = null;
    clearTimeout(timer);
    strokeEnded = performance.now();
    predictDrawing();
  });
}

function clearAll() {
  strokes = [];
  latestRequest++;  // an answer still on its way belongs to the old drawing
  redraw();
  showResult(null);
  showError(null);
  statusLine.textContent = "Draw a digit to start.";
  statusLine.className = "";
}

function undo() {
  strokes.pop();
  redraw();
  if (strokes.length) predictDrawing(); else clearAll();
}

document.getElementById("clear").addEventListener("click", clearAll);
document.getElementById("undo").addEventListener("click", undo);
document.getElementById("predict").addEventListener("click", predictDrawing);
document.addEventListener("keydown", (event) => {
  if (event.target === fileInput) return;
  if (event.key === "Escape") clearAll();
  else if (event.key === "z" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); undo(); }
  else if (event.key === "Enter" && event.target === canvas) predictDrawing();
});

function predictDrawing() {
  show((chosen) => chosen.classifyDrawing(), "your drawing");
}

function predictFile(file) {
  if (file) show((chosen) => chosen.classifyFile(file), file.name);
}

fileInput.addEventListener("change", () => { predictFile(fileInput.files[0]); fileInput.value = ""; });
dropzone.addEventListener("dragover", (event) => { event.preventDefault(); dropzone.classList.add("over"); });
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  predictFile(event.dataTransfer.files[0]);
});

async function show(classify, what) {
  const request = ++latestRequest;
  const started = strokeEnded ?? performance.now();
  strokeEnded = null;
  track(+1);
  let reply;
  try {
    reply = await classify(await engine);
  } catch (err) {
    reply = { error: err instanceof DigitError ? err.message : `no prediction (${err.message})` };
  } finally {
    track(-1);
  }
  if (request !== latestRequest) return;  // a newer drawing was sent meanwhile
  if (reply.error) {
    showResult(null);
    showError(`${what}: ${reply.error}`);
    statusLine.textContent = "No prediction.";
    statusLine.className = "";
    return;
  }
  showError(null);
  showResult(reply);
  const [first, second] = reply.top3;
  if (reply.verdict === "not_a_digit") {
    statusLine.textContent = "This does not look like a digit.";
  } else if (reply.verdict === "unsure") {
    statusLine.textContent = `Not sure: ${first.digit} or ${second.digit}?`;
  } else {
    statusLine.textContent = `It is a ${reply.digit} (${(100 * reply.probability).toFixed(1)}%).`;
  }
  statusLine.className = reply.verdict === "digit" ? "" : reply.verdict;
  document.body.dataset.answerMs = (performance.now() - started).toFixed(2);  // since the pen-up or the upload
  document.body.dataset.answeredAtMs = performance.now().toFixed(1);  // since the page was opened
  document.body.dataset.answered = Number(document.body.dataset.answered || 0) + 1;
}

function showError(message) {
  errorLine.hidden = !message;
  errorLine.textContent = message || "";
}

function showResult(reply) {
  const verdict = reply ? reply.verdict : null;
  digitOut.textContent = !reply || verdict === "not_a_digit" ? "?"
    : verdict === "unsure" ? `${reply.digit}?` : String(reply.digit);
  digitOut.className = verdict && verdict !== "digit" ? verdict : "";
  bars.classList.toggle("dimmed", Boolean(verdict) && verdict !== "digit");  // the bars are no answer then
  bars.querySelectorAll("li").forEach((item, d) => {
    const p = reply ? reply.probabilities[d] : 0;
    item.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector(".pct").textContent = reply ? `${(100 * p).toFixed(1)}%` : "–";
    item.classList.toggle("top", Boolean(reply) && d === reply.digit);
    item.setAttribute("aria-label", reply ? `digit ${d}: ${(100 * p).toFixed(1)}%` : `digit ${d}`);
  });
  const pixels = preview.getContext("2d");
  const image = pixels.createImageData(28, 28);
  for (let i = 0; i < 28 * 28; i++) {
    const v = reply ? Math.round(255 * reply.model_input[Math.floor(i / 28)][i % 28]) : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  pixels.putImageData(image, 0, 0);
}

redraw();
showResult(null);
