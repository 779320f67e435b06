"""The Dockerfile and its entrypoint, the entrypoint run for real (no Docker)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.deploy.files import ENTRYPOINT, RAY_NODES, ROOT, SERVICES


def test_the_image_runs_the_entrypoint_which_is_executable_valid_bash_and_in_the_context() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY --chmod=755 deploy/entrypoint.sh /usr/local/bin/conversa-entrypoint" in dockerfile
    assert 'ENTRYPOINT ["conversa-entrypoint"]' in dockerfile
    assert re.search(r"^USER conversa$", dockerfile, re.M)
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    # Everything the Dockerfile copies is let through .dockerignore (which ignores all else).
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {m.group(1) for m in re.finditer(r"^COPY (?:--\S+ )*(\S+)", dockerfile, re.M)}
    copied |= {"README.md"}
    assert copied <= allowed
    for service in RAY_NODES:
        assert SERVICES[service]["healthcheck"]["test"][1] == "conversa-entrypoint"


def run_entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_head_refuses_to_start_without_a_database_url() -> None:
    result = run_entrypoint("head", env={})
    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr


def test_the_head_gives_up_when_postgresql_never_answers() -> None:
    from tests.support.http_server import free_port

    url = f"postgresql://conversa:x@127.0.0.1:{free_port()}/conversa"
    result = run_entrypoint("head", env={"DATABASE_URL": url, "POSTGRES_WAIT_S": "2"})
    assert result.returncode != 0
    assert "PostgreSQL did not accept connections" in result.stderr
    assert "starting the Ray head" not in result.stderr


def test_the_head_healthcheck_passes_only_while_healthz_answers_200() -> None:
    from fastapi import FastAPI, Response

    from tests.support.http_server import ServerThread, free_port

    status = {"code": 200}
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(status_code=status["code"])

    server = ServerThread(app).start()
    try:
        assert (
            run_entrypoint("healthcheck", "head", env={"HTTP_PORT": str(server.port)}).returncode
            == 0
        )
        status["code"] = 503
        assert (
            run_entrypoint("healthcheck", "head", env={"HTTP_PORT": str(server.port)}).returncode
            != 0
        )
    finally:
        server.stop()
    assert (
        run_entrypoint("healthcheck", "head", env={"HTTP_PORT": str(free_port())}).returncode != 0
    )
