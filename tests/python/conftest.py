"""Fixtures that serve the example components with `tesseract-wasm serve`.

tests/python/run builds the release binary and the three examples and passes their paths in
TESSERACT_WASM_BIN, TESSERACT_WASM_VECTORADD, TESSERACT_WASM_ROSENBROCK and
TESSERACT_WASM_STEADY_STATE. Each example is served once per session on a free port, as
tesseract-jax's own tests/conftest.py serves its test Tesseracts, and stopped at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import pytest
import requests
from tesseract_core import Tesseract

# As tesseract-jax's tests do: the examples compute in float64.
jax.config.update("jax_enable_x64", True)

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0  # seconds; the first start compiles the component into the cache

_GUEST_ENV = {
    "vectoradd": "TESSERACT_WASM_VECTORADD",
    "rosenbrock": "TESSERACT_WASM_ROSENBROCK",
    "steady-state": "TESSERACT_WASM_STEADY_STATE",
}
_GUEST_FILE = {
    "vectoradd": "example_vectoradd.wasm",
    "rosenbrock": "example_rosenbrock.wasm",
    "steady-state": "example_steady_state.wasm",
}


def _path_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    path = Path(value) if value else default
    if not path.is_file():
        pytest.exit(
            f"{path} does not exist. Run the suite with tests/python/run, which builds it "
            f"and sets {var}.",
            returncode=3,
        )
    return path


def _binary() -> Path:
    return _path_from_env("TESSERACT_WASM_BIN", REPO / "target/release/tesseract-wasm")


def _component(name: str) -> Path:
    default = REPO / "target/guests/wasm32-wasip2/release" / _GUEST_FILE[name]
    return _path_from_env(_GUEST_ENV[name], default)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One running `tesseract-wasm serve`."""

    name: str
    url: str
    process: subprocess.Popen
    stderr_path: Path
    stdout_lines: list[str] = field(default_factory=list)

    def stderr(self, limit: int = 8000) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if len(text) <= limit else "…" + text[-limit:]

    def client(self, **kwargs) -> Tesseract:
        return Tesseract.from_url(self.url, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


_RUNNING: list[Server] = []


def _describe(server_name: str, cmd: list[str], stdout: list[str], stderr: str) -> str:
    return (
        f"command: {' '.join(cmd)}\n"
        f"--- {server_name} stdout ---\n{''.join(stdout)}\n"
        f"--- {server_name} stderr ---\n{stderr}"
    )


def serve(name: str, tmp_dir: Path, *extra_args: str) -> Server:
    """Start `tesseract-wasm serve` for one example and wait until /health answers."""
    port = _free_port()
    cmd = [str(_binary()), "serve", str(_component(name)), "--port", str(port), *extra_args]
    env = os.environ.copy()
    # Keep the precompiled components out of the user's cache.
    env.setdefault("TESSERACT_WASM_CACHE_DIR", str(REPO / "target/python-cache"))
    stderr_path = tmp_dir / f"{name}-{port}.stderr"
    stderr_file = open(stderr_path, "wb")  # noqa: SIM115 (the server owns it while it runs)
    process = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
    )
    stderr_file.close()

    stdout_lines: list[str] = []
    listening = threading.Event()
    url_box: list[str] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stdout_lines.append(line)
            if not listening.is_set() and line.startswith("listening on http://"):
                url_box.append(line.split("listening on ", 1)[1].strip())
                listening.set()

    threading.Thread(target=read_stdout, daemon=True).start()

    def fail(why: str) -> None:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        stderr = stderr_path.read_text(errors="replace")
        raise RuntimeError(
            f"tesseract-wasm serve ({name}) {why}\n{_describe(name, cmd, stdout_lines, stderr)}"
        )

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not listening.wait(0.05):
        if process.poll() is not None:
            fail(f"exited early with code {process.returncode}")
        if time.monotonic() > deadline:
            fail(f"printed no 'listening on' line within {STARTUP_TIMEOUT:.0f} s")

    url = url_box[0].rstrip("/")
    if url != f"http://127.0.0.1:{port}":
        fail(f"listens on {url}, not on the requested port {port}")
    while True:
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None:
            fail(f"exited early with code {process.returncode}")
        if time.monotonic() > deadline:
            fail(f"/health did not answer 200 within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.05)

    server = Server(name, url, process, stderr_path, stdout_lines)
    _RUNNING.append(server)
    return server


def _served(name: str, tmp_path_factory):
    server = serve(name, tmp_path_factory.mktemp(f"serve-{name}"))
    try:
        yield server
    finally:
        server.stop()
        _RUNNING.remove(server)
        code = server.process.returncode
        # SIGTERM is a graceful shutdown: the server exits 0 (or by the signal itself).
        assert code in (0, -signal.SIGTERM), (
            f"{name} server exited with {code} at shutdown\n{server.stderr()}"
        )


@pytest.fixture(scope="session")
def vectoradd_server(tmp_path_factory):
    yield from _served("vectoradd", tmp_path_factory)


@pytest.fixture(scope="session")
def rosenbrock_server(tmp_path_factory):
    yield from _served("rosenbrock", tmp_path_factory)


@pytest.fixture(scope="session")
def steady_state_server(tmp_path_factory):
    yield from _served("steady-state", tmp_path_factory)


# --- tesseract-core's own server, for the side-by-side tests (test_upstream.py) -------------

TWINS = REPO / "tests/python/twins"
UPSTREAM_STARTUP_TIMEOUT = 90.0  # seconds; importing tesseract_core.runtime takes a few


@dataclass
class UpstreamServer:
    """One running `tesseract-runtime serve` (tesseract-core) on a NumPy twin of an example."""

    name: str
    url: str
    process: subprocess.Popen
    log_path: Path
    output_path: Path

    def stderr(self, limit: int = 8000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text if len(text) <= limit else "…" + text[-limit:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_upstream(
    name: str, twin: str, tmp_dir: Path, input_path: Path, **env_extra: str
) -> UpstreamServer:
    """Launch `tesseract-runtime serve` on tests/python/twins/<twin>; see `wait_upstream`."""
    runtime = Path(sys.executable).with_name("tesseract-runtime")
    if not runtime.is_file():
        pytest.exit(f"{runtime} is missing: run the suite with tests/python/run", returncode=3)
    port = _free_port()
    output_path = tmp_dir / f"upstream-out-{twin}"
    output_path.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    env.update(
        TESSERACT_API_PATH=str(TWINS / twin / "tesseract_api.py"),
        TESSERACT_INPUT_PATH=str(input_path),
        TESSERACT_OUTPUT_PATH=str(output_path),
        **env_extra,
    )
    log_path = tmp_dir / f"upstream-{twin}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(runtime), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = UpstreamServer(name, f"http://127.0.0.1:{port}", process, log_path, output_path)
    _RUNNING.append(server)  # type: ignore[arg-type]  (same stop/stderr interface)
    return server


def wait_upstream(server: UpstreamServer) -> None:
    """Block until /health answers 200; fail with the server's log if it does not."""
    deadline = time.monotonic() + UPSTREAM_STARTUP_TIMEOUT
    while True:
        try:
            if requests.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"tesseract-runtime serve ({server.name}) did not become healthy "
                f"(exit code {server.process.returncode})\n{server.stderr()}"
            )
        time.sleep(0.1)


def stop_upstream(server: UpstreamServer) -> None:
    server.stop()
    if server in _RUNNING:
        _RUNNING.remove(server)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def vectoradd(vectoradd_server) -> Tesseract:
    return vectoradd_server.client()


@pytest.fixture(scope="session")
def rosenbrock(rosenbrock_server) -> Tesseract:
    return rosenbrock_server.client()


@pytest.fixture(scope="session")
def steady_state(steady_state_server) -> Tesseract:
    return steady_state_server.client()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test, attach the stderr of every server it was talking to."""
    report = yield
    if report.failed:
        for server in list(_RUNNING):
            text = server.stderr()
            if text.strip():
                report.sections.append((f"{server.name} server stderr", text))
    return report
