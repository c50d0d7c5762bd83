"""`make lab` really serves the notebooks: start it headless, ask its API, stop it."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request

import nbformat

from conftest import NOTEBOOKS, REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_serves_every_notebook():
    port, token = free_port(), secrets.token_hex(16)
    flags = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --IdentityProvider.token={token}"
    # -o: the set-up (venv and data) is taken as done, as `make test` did it just before; the
    # doctor's checks, which `make lab` runs next, still look at both.
    lab = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "-o", "data", "lab", f"LAB_FLAGS={flags}"],
                           cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/contents"
    try:
        listing = None
        for _ in range(240):
            if lab.poll() is not None:
                raise AssertionError("make lab exited early:\n" + lab.stderr.read().decode()[-2000:])
            try:
                with urllib.request.urlopen(f"{base}?token={token}", timeout=2) as r:
                    listing = json.load(r)
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within two minutes"
        names = {item["name"] for item in listing["content"]}
        assert {nb.name for nb in NOTEBOOKS} <= names
        for nb in NOTEBOOKS:
            with urllib.request.urlopen(f"{base}/{nb.name}?content=1&token={token}", timeout=30) as r:
                model = json.load(r)
            assert model["type"] == "notebook"
            nbformat.validate(nbformat.from_dict(model["content"]))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=30) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
