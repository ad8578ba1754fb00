"use strict";
// The drawing pad: strokes are kept as lists of points so that Undo can redraw all but the last one.
const canvas = document.getElementById("canvas");
const pen = canvas.getContext("2d");
const preview = document.getElementById("preview");
const statusLine = document.getElementById("status");
const errorLine = document.getElementById("error");
const digitOut = document.getElementById("digit");
const bars = document.getElementById("bars");
const fileInput = document.getElementById("file");
const dropzone = document.getElementById("dropzone");
const STROKE_WIDTH = canvas.width / 12;  // MNIST strokes are about a tenth of the digit's height
const DEBOUNCE_MS = 250;

let strokes = [];
let current = null;
let timer = null;
let latestRequest = 0;
let requested = 0;  // requests started and still pending, kept on <body> for tests and in aria-busy
let pending = 0;

function track(change) {
  if (change > 0) requested++;
  pending += change;
  document.body.dataset.requested = requested;
  document.body.dataset.pending = pending;
  document.getElementById("answer").setAttribute("aria-busy", String(pending > 0));
}

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
    predictDrawing();
  });
}

function clearAll() {
  strokes = [];
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
  track(+1);
  canvas.toBlob((blob) => send(blob, { "Content-Type": "image/png" }, "your drawing"), "image/png");
}

function predictFile(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  track(+1);
  send(form, {}, file.name);
}

fileInput.addEventListener("change", () => { predictFile(fileInput.files[0]); fileInput.value = ""; });
dropzone.addEventListener("dragover", (event) => { event.preventDefault(); dropzone.classList.add("over"); });
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("over");
  predictFile(event.dataTransfer.files[0]);
});

async function send(body, headers, what) {
  const request = ++latestRequest;
  let answer;
  try {
    const response = await fetch("/api/predict", { method: "POST", body, headers });
    answer = await response.json();
    if (!response.ok) answer = { error: answer.error || `the server answered ${response.status}` };
  } catch (err) {
    answer = { error: `no answer from the server (${err.message})` };
  } finally {
    track(-1);
  }
  if (request !== latestRequest) return;  // a newer drawing was sent meanwhile
  if (answer.error) {
    showResult(null);
    showError(`${what}: ${answer.error}`);
    statusLine.textContent = "No prediction.";
    statusLine.className = "";
    return;
  }
  showError(null);
  showResult(answer);
  const [first, second] = answer.top3;
  if (answer.verdict === "not_a_digit") {
    statusLine.textContent = "This does not look like a digit.";
  } else if (answer.verdict === "unsure") {
    statusLine.textContent = `Not sure: ${first.digit} or ${second.digit}?`;
  } else {
    statusLine.textContent = `It is a ${answer.digit} (${(100 * answer.probability).toFixed(1)}%).`;
  }
  statusLine.className = answer.verdict === "digit" ? "" : answer.verdict;
}

function showError(message) {
  errorLine.hidden = !message;
  errorLine.textContent = message || "";
}

function showResult(answer) {
  const verdict = answer ? answer.verdict : null;
  digitOut.textContent = !answer || verdict === "not_a_digit" ? "?"
    : verdict === "unsure" ? `${answer.digit}?` : String(answer.digit);
  digitOut.className = verdict && verdict !== "digit" ? verdict : "";
  bars.classList.toggle("dimmed", Boolean(verdict) && verdict !== "digit");  // the bars are no answer then
  bars.querySelectorAll("li").forEach((item, d) => {
    const p = answer ? answer.probabilities[d] : 0;
    item.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector(".pct").textContent = answer ? `${(100 * p).toFixed(1)}%` : "–";
    item.classList.toggle("top", Boolean(answer) && d === answer.digit);
    item.setAttribute("aria-label", answer ? `digit ${d}: ${(100 * p).toFixed(1)}%` : `digit ${d}`);
  });
  const pixels = preview.getContext("2d");
  const image = pixels.createImageData(28, 28);
  for (let i = 0; i < 28 * 28; i++) {
    const v = answer ? Math.round(255 * answer.model_input[Math.floor(i / 28)][i % 28]) : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  pixels.putImageData(image, 0, 0);
}

redraw();
showResult(null);
