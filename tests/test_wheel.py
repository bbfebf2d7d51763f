"""A built wheel runs on its own: migrations, templates and static files included.

Builds the wheel from a copy of the working tree, installs it with its
dependencies in a fresh venv (no access to this checkout or to the test
venv's packages), builds a SQLite database there with ``flask db upgrade``,
and serves ``/login`` and a static file from a folder outside the checkout.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("MDT_TEST_DB", "sqlite") != "sqlite",
        reason="the wheel does not depend on the database; it is tested once, on the SQLite pass",
    ),
]

# What a build must not pick up from the checkout (venvs, caches, earlier builds).
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".pytest_cache", "instance", "var", "bench-results",
)


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 300,
         ) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, timeout=timeout,
                            capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without this venv, the checkout on the path, or mdt settings."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
           and not key.startswith(("MDT_", "FLASK_"))}
    return env | extra


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_the_wheel_installs_migrates_and_serves_outside_the_checkout(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    env = _clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", tmp_path / "dist",
          source], cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "dist").glob("mdt-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    bin_dir = venv / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path, env=env)

    # From a folder outside the checkout, with nothing of it on the path.
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = _clean_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        MDT_DATABASE_URL=f"sqlite:///{tmp_path / 'mdt.sqlite'}",
        MDT_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    location = _run([bin_dir / "python", "-c", "import mdt; print(mdt.__file__)"],
                    cwd=workdir, env=env)
    assert Path(location.strip()).is_relative_to(venv), location

    _run([bin_dir / "flask", "--app", "mdt", "db", "upgrade"], cwd=workdir, env=env)
    assert "(head)" in _run([bin_dir / "flask", "--app", "mdt", "db", "current"],
                            cwd=workdir, env=env)

    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out, subprocess.Popen(
        [bin_dir / "flask", "--app", "mdt", "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
    ) as server:
        try:
            status, body = _wait_for(f"http://127.0.0.1:{port}/login", server, log)
            assert status == 200, body[:2000]
            assert b"<h1>Sign in</h1>" in body
            assert b'name="password"' in body and b'name="csrf_token"' in body

            status, css = _get(f"http://127.0.0.1:{port}/static/css/app.css")
            assert status == 200
            assert css == (ROOT / "mdt" / "static" / "css" / "app.css").read_bytes()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def _wait_for(url: str, server: subprocess.Popen, log: Path) -> tuple[int, bytes]:
    deadline = time.monotonic() + 30
    while True:
        if server.poll() is not None:
            pytest.fail(f"the server stopped ({server.returncode}):\n{log.read_text()}")
        try:
            return _get(url)
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"no answer from {url} in 30 s:\n{log.read_text()}")
            time.sleep(0.2)
