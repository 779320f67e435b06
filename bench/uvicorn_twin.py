"""The plain-uvicorn twin of the Serve ingress, started by bench/webhook_ingress.py.

It serves exactly what an Ingress replica serves (`serve_app.app.build_app()` around an
`IngressContext(settings)`), in one uvicorn process that joins an existing Ray cluster as a driver,
so accepted messages are handed to the same conversation actors as through Serve.

    .venv/bin/python bench/uvicorn_twin.py --settings S.pickle --gcs HOST:PORT --port P [--nice N]

`--settings` is a pickled `engine.config.Settings` with DATABASE_URL already resolved. `--nice`
raises this process's niceness (Ray starts its workers, the Serve replicas included, at nice 15).
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, type=Path, help="pickled Settings")
    parser.add_argument("--gcs", required=True, help="the Ray cluster's GCS address")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--nice", type=int, default=0, help="increment to this process's nice")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.nice:
        os.nice(args.nice)
    settings = pickle.loads(args.settings.read_bytes())

    import ray
    import uvicorn

    from engine.logs import configure_logging
    from serve_app.app import build_app
    from serve_app.context import IngressContext

    # Before the context: its router creates/gets conversation actors in this cluster.
    ray.init(address=args.gcs, namespace=settings.ray_namespace, log_to_driver=False)
    configure_logging(settings.log_level)  # as the Ingress replica does
    app = build_app()
    app.state.ctx = IngressContext(settings)
    # Access log on, like Serve's replica access log; stdout/stderr go to a file.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", lifespan="off")


if __name__ == "__main__":
    main()
