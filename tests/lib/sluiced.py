"""Runs the sluiced binary built by CMake for tests."""
import json
import os
import subprocess

BUILD = os.environ.get("SLUICE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SLUICED = os.path.abspath(os.path.join(BUILD, "control", "sluiced"))
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.environ.get("SLUICE_CORPUS", os.path.abspath(os.path.join(REPO, "..", "shared", "corpus")))


def run(args, timeout=120, **kw):
    return subprocess.run([SLUICED] + list(args), capture_output=True, text=True, timeout=timeout, **kw)


def events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
