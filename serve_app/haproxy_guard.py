"""What Conversa runs as HAProxy (`RAY_SERVE_HAPROXY_BINARY_PATH` points at it): the real binary,
given Serve's configuration made private first.

Ray 2.60's template (`ray/serve/_private/haproxy_templates.py`, not configurable) binds the
stats page on `*:RAY_SERVE_HAPROXY_STATS_PORT`, the Prometheus exporter on
`:RAY_SERVE_HAPROXY_METRICS_PORT` (every interface) and makes the admin socket `mode 666`
(`level admin`: anyone on the machine could drain or disable replicas). Serve starts and reloads
HAProxy with `-f <config>`; this rewrites that file in place (stats and metrics on
HAPROXY_STATS_HOST, the socket 0600) and then becomes HAProxy. The HTTP frontend is untouched.

Usage (written by `serve_app.runtime`): `python -m serve_app.haproxy_guard <real haproxy> <host>
<haproxy args...>`.
"""

from __future__ import annotations

import itertools
import os
import re
import sys

# `bind *:8404` (stats) and `bind :9101` (metrics): the only binds with no host or `*`.
_ANY_INTERFACE_BIND = re.compile(r"^([ \t]*bind[ \t]+)\*?:(\d+)[ \t]*$", re.M)
_SOCKET_MODE = re.compile(r"^(\s*stats socket \S+ mode )666\b", re.M)


def guard_config(config: str, *, host: str) -> str:
    """Serve's HAProxy configuration with its stats and metrics frontends on `host` and its
    admin socket readable and writable by its owner only."""
    config = _ANY_INTERFACE_BIND.sub(rf"\g<1>{host}:\g<2>", config)
    return _SOCKET_MODE.sub(r"\g<1>600", config)


def _config_path(args: list[str]) -> str | None:
    for flag, value in itertools.pairwise(args):
        if flag == "-f":
            return value
    return None


def main(argv: list[str]) -> None:
    real, host, *args = argv
    path = _config_path(args)
    if path and os.path.isfile(path):
        with open(path) as f:
            config = f.read()
        guarded = guard_config(config, host=host)
        if guarded != config:
            with open(path, "w") as f:
                f.write(guarded)
    os.execv(real, [real, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
