"""The FastAPI app: a page to draw or upload a digit, and an HTTP API that classifies images with the saved model.

    python -m app [--host 127.0.0.1] [--port 8000] [--model models/mnist_cnn.onnx]

The model is loaded once at start-up: the ONNX file with onnxruntime by default, a .keras file with Keras in safe
mode. Every answer has a verdict (digit, unsure, not_a_digit); every refusal is a 4xx with {"error": "..."}.
"""
import ctypes
import ctypes.util
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

import mnist_digits
from app import static_site

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp", "image/tiff")


class DigitProbability(BaseModel):
    digit: Annotated[int, Field(ge=0, le=9)]
    probability: Annotated[float, Field(ge=0.0, le=1.0)]


class PredictionResponse(BaseModel):
    digit: Annotated[int, Field(ge=0, le=9, description="the most likely digit")]
    probability: Annotated[float, Field(ge=0.0, le=1.0, description="its probability")]
    probabilities: Annotated[list[float], Field(min_length=10, max_length=10, description="one per digit, 0 to 9")]
    top3: Annotated[list[DigitProbability], Field(min_length=3, max_length=3)]
    verdict: Annotated[Literal["digit", "unsure", "not_a_digit"], Field(
        description="digit: a confident answer; unsure: a digit, but not sure which; not_a_digit: nothing in the "
                    "image looks like a digit (by the rule in the model's metadata file)")]
    unsure: Annotated[bool, Field(description="true unless the verdict is digit")]
    model_input: Annotated[list[list[float]], Field(min_length=28, max_length=28,
                                                    description="the 28 x 28 input after MNIST-style preprocessing")]


class HealthResponse(BaseModel):
    status: str
    model: Annotated[str, Field(description="the model file that serves")]
    sha256: str
    runtime: Annotated[str, Field(description="what runs the model, with its version")]
    unsure_below: Annotated[float, Field(description="a digit is answered when its probability reaches this")]
    not_a_digit_below: Annotated[float, Field(description="not a digit when the rule's score (the top-two mass or "
                                                          "the highest probability) stays below this")]
    threshold_from: str


class ErrorResponse(BaseModel):
    error: str


class Refused(Exception):
    """A request the API refuses, with its HTTP status and a one-line reason."""

    def __init__(self, status_code, message):
        super().__init__(message)
        self.status_code, self.message = status_code, message


class Classifier:
    """The loaded model and its decision rule; one instance for the app's lifetime."""

    def __init__(self, model_path):
        self.path = Path(model_path)
        self.model = mnist_digits.load_model(self.path)
        self.sha256 = mnist_digits.file_sha256(self.path)
        metadata = mnist_digits.load_metadata(self.path)
        self.rule, self.threshold_from = metadata["rule"], metadata["source"]
        self.model(np.zeros((1, 28, 28, 1), np.float32))  # the first call pays the set-up costs, not a user

    def classify(self, data):
        """Bytes of an image file -> PredictionResponse, or Refused."""
        try:
            image = mnist_digits.decode_image(data)
        except ValueError as err:
            raise Refused(413 if isinstance(err, mnist_digits.ImageTooLarge) else 400, str(err)) from None
        try:
            digit_image = mnist_digits.mnist_style(image)
        except ValueError as err:
            raise Refused(422, str(err)) from None
        [prediction] = mnist_digits.predict(self.model, [digit_image], self.rule)
        return PredictionResponse(
            digit=prediction.digit, probability=prediction.probability, probabilities=prediction.probabilities,
            top3=[DigitProbability(digit=d, probability=p) for d, p in prediction.top3], verdict=prediction.verdict,
            unsure=prediction.unsure,
            model_input=np.round(digit_image, 3).tolist())


def keep_freed_memory(limit=64 * 1024 * 1024):
    """Let glibc's malloc reuse freed blocks of up to `limit` bytes instead of returning them to the system.

    The preprocessing of every request allocates and frees arrays of a megabyte or more. By default glibc maps
    such blocks afresh each time, and touching the new pages cost more CPU than the rest of the preprocessing
    (measured by scripts/benchmark_api.py). Elsewhere than glibc this does nothing.
    """
    mmap_threshold, trim_threshold = -3, -1  # M_MMAP_THRESHOLD and M_TRIM_THRESHOLD in malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(mmap_threshold, limit)
        libc.mallopt(trim_threshold, 4 * limit)
    except (OSError, AttributeError, TypeError):
        pass


@asynccontextmanager
async def lifespan(app: FastAPI):
    keep_freed_memory()
    # Classifying is CPU work that mostly holds Python's interpreter lock: more threads than cores only take turns
    # with it (measured with 16 clients on 2 cores: about 300 predictions/s with 2 threads, 230 to 260 with 40)
    anyio.to_thread.current_default_thread_limiter().total_tokens = max(2, os.cpu_count() or 2)
    app.state.classifier = Classifier(os.environ.get("MNIST_MODEL", mnist_digits.DEFAULT_MODEL))
    yield


app = FastAPI(
    title="MNIST digit recogniser",
    description="Classify a handwritten digit with the CNN trained by notebooks/2_what_it_does_not_know.ipynb.",
    version="1.0.0",
    lifespan=lifespan,
    docs_url=None,  # the interactive docs pages load their scripts from a CDN; this app works offline
    redoc_url=None,
    openapi_url="/api/openapi.json",
)
if os.environ.get("MNIST_ALLOW_ORIGINS"):  # no cross-origin access unless asked for
    app.add_middleware(CORSMiddleware, allow_origins=os.environ["MNIST_ALLOW_ORIGINS"].split(","),
                       allow_methods=["GET", "POST"], allow_headers=["Content-Type"])


@app.exception_handler(Refused)
async def refused_handler(request: Request, exc: Refused):
    return JSONResponse({"error": exc.message}, status_code=exc.status_code)


@app.exception_handler(StarletteHTTPException)
async def http_error_handler(request: Request, exc: StarletteHTTPException):
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


@app.exception_handler(RequestValidationError)
async def validation_error_handler(request: Request, exc: RequestValidationError):
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request"}
    return JSONResponse({"error": f"invalid request: {first['msg']}"}, status_code=422)


async def read_body(request: Request):
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Refused(413, f"the body is {int(declared):,} bytes, over the limit of {MAX_BODY_BYTES:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refused(413, f"the body is over the limit of {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def image_bytes(request: Request):
    """The image in a request: the `file` field of a multipart form, or the raw body with an image type."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data" and content_type not in IMAGE_TYPES:
        raise Refused(415, f"content type {content_type or '(none)'!r} is not accepted: send multipart/form-data "
                           f"with a 'file' field, or an image body ({', '.join(IMAGE_TYPES)})")
    body = await read_body(request)
    if not body:
        raise Refused(400, "the body is empty: send an image")
    if content_type in IMAGE_TYPES:
        return body

    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=10).parse()
    except MultiPartException as err:
        raise Refused(400, f"malformed multipart body: {err.message}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Refused(400, "the multipart form has no file in a field named 'file'")
    data = await upload.read()
    await form.close()
    if not data:
        raise Refused(400, "the uploaded file is empty")
    return data


ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in [
    (400, "no image, an empty body, or a file that is not an image or is truncated or corrupt"),
    (413, "the body is over 5 MB, or the image has too many pixels to decode safely"),
    (415, "the content type is neither multipart/form-data nor an image type"),
    (422, "the image holds no digit: blank, no contrast, or too small"),
]}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in ("image/png", "image/jpeg")},
}}}


@app.post("/api/predict", response_model=PredictionResponse, responses=ERRORS, openapi_extra=UPLOAD_BODY,
          summary="Classify the digit in an image")
async def predict_digit(request: Request) -> PredictionResponse:
    """Send an image as a multipart upload (field `file`) or as the raw body with an image content type.
    It is preprocessed like MNIST (grayscale, ink white on black, cropped, scaled into 20 x 20, centred by mass)."""
    data = await image_bytes(request)
    answer = await run_in_threadpool(request.app.state.classifier.classify, data)
    # pydantic writes the JSON itself: FastAPI's generic encoder takes far longer over the 784 numbers of model_input
    return Response(answer.model_dump_json(), media_type="application/json")


@app.get("/api/health", response_model=HealthResponse, summary="The model is loaded, and which one")
async def health(request: Request) -> HealthResponse:
    classifier = request.app.state.classifier
    return HealthResponse(status="ok", model=classifier.path.name, sha256=classifier.sha256,
                          runtime=classifier.model.runtime, **classifier.rule, threshold_from=classifier.threshold_from)


@app.get("/", include_in_schema=False)
async def index():
    return FileResponse(STATIC_DIR / "index.html")


# The page runs the model in the browser, from the same paths as the static site (app/static_site.py); without
# these files it asks the API instead.
@app.get("/static/ort/{name}", include_in_schema=False)
async def runtime_file(name: str):
    path = static_site.RUNTIME_DIR / name
    if name not in static_site.RUNTIME_FILES or not path.is_file():
        raise Refused(404, f"{name}: not a file of the page's runtime, or onnxruntime-web is not installed (npm ci)")
    return FileResponse(path)


@app.get("/models/{name}", include_in_schema=False)
async def model_file(request: Request, name: str):
    """The served model and its metadata, under the names the page asks for; none for a Keras model."""
    served = request.app.state.classifier.path
    files = {"mnist_cnn.onnx": served, "mnist_cnn.json": mnist_digits.metadata_path(served)}
    if name not in files or served.suffix != ".onnx" or not files[name].is_file():
        raise Refused(404, f"{name}: not a file of the served ONNX model")
    return FileResponse(files[name])


app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")  # after /static/ort, which it would hide
