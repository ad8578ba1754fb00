#!/usr/bin/env python3
"""Run the examples of docs/serving.md and write their real output between its markers.

    MNIST_DATA_DIR=/path/to/mnist .venv/bin/python scripts/update_examples.py [--serve-python .venv-serve/bin/python]

It makes the example images with scripts/make_examples.py in a temporary folder, runs predict.py on them with the
serving venv's Python, starts the app there and asks its API with curl, so that the transcripts describe the
committed model. Run it after the model changes.
"""
import argparse
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCUMENT = REPO / "docs" / "serving.md"
PREDICT_COMMANDS = ["python predict.py photo_of_a_seven.jpg drawing.png blue_ink.png letter_a.png", "echo $?",
                    "python predict.py --json drawing.png letter_a.png",
                    "python predict.py blue_ink.png blank_page.png missing.png", "echo $?"]
API_COMMANDS = ["curl -s -F file=@blue_ink.png {url}/api/predict",
                'curl -s --data-binary @letter_a.png -H "Content-Type: image/png" {url}/api/predict',
                'curl -s -w " %{{http_code}}\\n" --data-binary @blank_page.png -H "Content-Type: image/png" '
                "{url}/api/predict",
                'curl -s -w " %{{http_code}}\\n" --data-binary "hello" -H "Content-Type: text/plain" {url}/api/predict',
                "curl -s {url}/api/health"]
PUBLISHED_URL = "http://127.0.0.1:8000"


def transcript(commands, folder, python, url=PUBLISHED_URL, real_url=PUBLISHED_URL):
    """Each command as typed, then what it printed (stdout and stderr, as a terminal shows them)."""
    lines, status = [], 0
    for command in commands:
        lines.append(f"$ {command.format(url=url)}")
        if command == "echo $?":
            lines.append(str(status))
            continue
        argv = shlex.split(command.format(url=real_url))
        if argv[0] == "python":
            argv = [python, str(REPO / "predict.py"), *argv[2:]]
        run = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=120)
        status = run.returncode
        output = run.stdout + run.stderr
        output = re.sub(r'"model_input":\[\[.*?\]\]', '"model_input":"[... 28 x 28 ...]"', output)
        lines += output.rstrip("\n").splitlines()
    return "\n".join(lines)


def replace_block(text, name, block):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = text.split(start, 1)
    old = rest.split(end, 1)[0]
    prose = old.split("```", 1)[0]  # the sentence before the transcript stays
    return f"{head}{start}{prose}```\n{block}\n```\n{end}{rest.split(end, 1)[1]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-python", default=str(REPO / ".venv-serve" / "bin" / "python"))
    args = parser.parse_args()
    args.serve_python = str(Path(args.serve_python).absolute())
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_examples.py"), str(folder)], check=True)
        predict = transcript(PREDICT_COMMANDS, folder, args.serve_python)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([args.serve_python, "-m", "app", "--port", str(port)], cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            real_url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                if subprocess.run(["curl", "-sf", f"{real_url}/api/health"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            api = transcript(API_COMMANDS, folder, args.serve_python, real_url=real_url)
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = DOCUMENT.read_text(encoding="utf-8")
    text = replace_block(replace_block(text, "predict-example", predict), "api-example", api)
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"updated the examples in {DOCUMENT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
