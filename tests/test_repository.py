"""What git tracks is what a fresh clone needs: no links into one machine's folders, nothing .gitignore ignores."""
import subprocess

import pytest
from conftest import REPO


def git(*arguments):
    run = subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"not a git checkout: {run.stderr.strip()}")
    return run.stdout.splitlines()


def test_no_symbolic_links_are_tracked():
    # A committed link to a local venv (.venv -> /work/main/.venv) made every fresh clone's install fail.
    links = [line.split("\t", 1)[1] for line in git("ls-files", "--stage") if line.startswith("120000 ")]
    assert not links, f"symbolic links are tracked: {links}; a fresh clone elsewhere cannot follow them"


def test_no_ignored_paths_are_tracked():
    ignored = git("ls-files", "--cached", "--ignored", "--exclude-standard")
    assert not ignored, f"tracked paths that .gitignore ignores: {ignored}"
