"""Start `coachlog serve` as a real process and talk to it over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The console script installed beside the interpreter running the tests.
COACHLOG = str(Path(sys.executable).parent / "coachlog")
LIVE_FIRM = "firm-live"
LIVE_COACH = "coach-live"
LIVE_ADMIN = "admin-live"
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Reply:
    """An HTTP answer: status, headers (lower-case names) and parsed JSON body."""

    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class LiveServer:
    """A `coachlog serve` process, with a coach's and a firm admin's token of its firm."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    env: dict[str, str]
    log: Path
    admin_token: str = ""
    stopped: int | None = field(default=None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def admin_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """Send one request on a fresh connection (safe from many threads)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(self.auth)
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                sent["Content-Type"] = "application/json"
            sent.update(headers or {})
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            answer = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        parsed = json.loads(raw) if raw and "json" in answer.get("content-type", "") else raw
        return Reply(response.status, answer, parsed)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the server and return its exit code (killing it if it hangs)."""
        if self.stopped is not None:
            return self.stopped
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.stopped = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.stopped = -9
        return self.stopped


def cli(env: dict[str, str], *args: str) -> str:
    """Run the coachlog CLI and return what it printed."""
    done = subprocess.run(
        [COACHLOG, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def start_server(
    variables: dict[str, str],
    directory: Path,
    *,
    workers: int | None = None,
    extra: tuple[str, ...] = (),
) -> LiveServer:
    """Create a firm, a coach and a token with the CLI, then serve and wait for /readyz."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACHLOG_")}
    env["COACHLOG_MASTER_KEY"] = os.environ["COACHLOG_MASTER_KEY"]
    env.update(variables)
    cli(env, "firms", "create", LIVE_FIRM, "--name", "Live Coaching")
    cli(env, "users", "create", LIVE_COACH, "--firm", LIVE_FIRM, "--role", "coach")
    token = cli(env, "tokens", "create", LIVE_COACH, "--firm", LIVE_FIRM).strip().splitlines()[-1]
    assert token.startswith("cl_")
    cli(env, "users", "create", LIVE_ADMIN, "--firm", LIVE_FIRM, "--role", "firm_admin")
    admin = cli(env, "tokens", "create", LIVE_ADMIN, "--firm", LIVE_FIRM).strip().splitlines()[-1]
    port = free_port()
    log = directory / "server.log"
    command = [COACHLOG, "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    command += list(extra)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=directory,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(
        process=process, port=port, token=token, env=env, log=log, admin_token=admin
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log_text()}")
        try:
            if server.request("GET", "/readyz", timeout=2).status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"server not ready after {START_TIMEOUT}s:\n{server.log_text()}")
        time.sleep(0.1)
