"""HAProxy refuses a socket path over 97 characters: its directory must fit wherever it lands."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Settings
from serve_app.runtime import haproxy_runtime_dir

# What Serve puts below the directory: `/<56-character node id>/metrics.sock`.
NODE_ID = "6463dce13d9d367a67b894793673c6560c49c17bb9dfb5406b346562"


def _longest_socket(directory: Path) -> str:
    return str(directory / NODE_ID / "metrics.sock")


@pytest.mark.parametrize(
    "runtime_dir",
    [
        "/run/user/1000",  # a desktop session's
        "/home/someone/projects/conversa/.conversa/run",  # what the embedded PostgreSQL sets
        None,
    ],
)
def test_haproxy_sockets_fit_whatever_the_runtime_dir(
    runtime_dir: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if runtime_dir is None:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    else:
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime_dir)
    settings = Settings(_env_file=None, data_dir=tmp_path / "a-rather-long-data-directory-name")

    directory = haproxy_runtime_dir(settings)

    assert len(_longest_socket(directory)) <= 97
    assert directory.name.startswith("cvhap-")


def test_a_short_runtime_dir_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/u/7")
    settings = Settings(_env_file=None, data_dir=tmp_path)

    assert haproxy_runtime_dir(settings).parent == Path("/run/u/7")


def test_two_data_dirs_get_two_directories(tmp_path: Path) -> None:
    first = haproxy_runtime_dir(Settings(_env_file=None, data_dir=tmp_path / "one"))
    second = haproxy_runtime_dir(Settings(_env_file=None, data_dir=tmp_path / "two"))

    assert first != second
