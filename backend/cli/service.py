"""`scene-r1 serve`, `keys` and `broker`: the backend service and what secures it."""

from __future__ import annotations

import threading
from pathlib import Path

from ...shared.defaults import DEFAULT_ADDRESS, DEFAULT_BROKER_BACKEND
from ...shared.scene import SceneError
from .common import default_of, model_arguments, option, pipeline_settings


def register(commands) -> None:
    from ..service.settings import ServerSettings

    serve = commands.add_parser("serve", help="run the backend service (ZeroMQ) for Blender, the viewer and `query`")
    option(serve, "--bind", ServerSettings, "bind", "address to listen on; anything but loopback needs --curve-keys")
    serve.add_argument(
        "--curve-keys",
        type=Path,
        default=None,
        help="folder from `scene-r1 keys`: server.key_secret + authorized_clients/ (or, with --broker, "
        "worker.key_secret + the broker's server.key)",
    )
    serve.add_argument(
        "--broker",
        default=None,
        help="instead of binding, serve as a worker of `scene-r1 broker` at this address (non-loopback: --curve-keys)",
    )
    serve.add_argument("--name", default=None, help="worker name shown by the broker")
    serve.add_argument("--ready-file", type=Path, default=None, help="write the bound address here once listening")
    option(
        serve,
        "--jobs",
        ServerSettings,
        "jobs",
        "query threads (one query uses the models at a time; more threads answer memoised results meanwhile)",
    )
    option(serve, "--max-frames", ServerSettings, "max_frames", "frames accepted in one scene")
    cache_gb = default_of(ServerSettings, "cache_bytes") / (1 << 30)
    serve.add_argument(
        "--cache-gb", type=float, default=cache_gb, help=f"decoded scenes and their work kept (default: {cache_gb:g})"
    )
    max_message_argument(serve)
    _scan_root_argument(serve)
    model_arguments(serve)
    serve.set_defaults(run=run_serve)

    keys = commands.add_parser("keys", help="make CURVE key pairs for a server and a client")
    keys.add_argument("dir", type=Path)
    keys.set_defaults(run=run_keys)

    broker = commands.add_parser("broker", help="put several `serve --broker` workers behind one address")
    broker.add_argument("--frontend", default=DEFAULT_ADDRESS, help="where clients connect")
    broker.add_argument("--backend", default=DEFAULT_BROKER_BACKEND, help="where workers connect")
    broker.add_argument(
        "--curve-keys",
        type=Path,
        default=None,
        help="folder from `scene-r1 keys`: encrypt both ports, admit only authorized_clients/ and authorized_workers/",
    )
    broker.add_argument(
        "--trusted-network",
        action="store_true",
        help="bind non-loopback addresses without keys (anyone there can join as a worker and read scans)",
    )
    max_message_argument(broker)
    broker.set_defaults(run=run_broker)


def _scan_root_argument(serve) -> None:
    serve.add_argument(
        "--scan-root",
        type=Path,
        action="append",
        default=[],
        help="a folder below which scan.open may read capture folders (repeatable; default: any folder "
        "this user can read)",
    )


def max_message_argument(parser) -> None:
    """--max-message-mb, the same for serve and broker (a broker refuses what its workers would)."""
    from ..service.settings import ServerSettings

    parser.add_argument(
        "--max-message-mb",
        type=float,
        default=default_of(ServerSettings, "max_message_bytes") / (1 << 20),
        help="cap on one message's buffers, checked before anything is allocated (default: %(default)g)",
    )


def max_message_bytes(args) -> int:
    if not 0 < args.max_message_mb < 1 << 30:
        raise SceneError(f"--max-message-mb must be a positive number of megabytes, got {args.max_message_mb:g}")
    return int(args.max_message_mb * (1 << 20))


def run_serve(args) -> int:
    from ..service.server import Server
    from ..service.settings import ServerSettings

    settings = ServerSettings(
        bind=args.bind,
        curve_keys=args.curve_keys,
        broker=args.broker,
        name=args.name or "",
        jobs=args.jobs,
        max_frames=args.max_frames,
        cache_bytes=int(args.cache_gb * (1 << 30)),
        max_message_bytes=max_message_bytes(args),
        scan_roots=tuple(args.scan_root),
        pipeline=pipeline_settings(args),
    )
    server = Server(settings)
    where = f"worker of broker {args.broker}" if args.broker else f"listening on {args.bind}"
    security = "CURVE" if args.curve_keys else "no encryption: loopback only"
    print(f"scene-r1 backend {where} ({security}); models load on the first query", flush=True)
    if args.ready_file is not None:  # for whoever started us on port * (service/local.py)
        threading.Thread(target=_announce, args=(server, args.ready_file), daemon=True).start()
    server.serve()
    return 0


def _announce(server, path: Path, timeout: float = 600.0) -> None:
    """Write the bound address (the real port when bound to :*) once the server listens."""
    if server.ready.wait(timeout):
        partial = path.with_suffix(".partial")
        partial.write_text(server.endpoint, encoding="utf-8")
        partial.replace(path)  # whole or nothing for the reader


def run_keys(args) -> int:
    from ..service.keys import make_keys

    paths = make_keys(args.dir)
    secret = paths["server_secret"].name
    print(f"server: scene-r1 serve --bind tcp://0.0.0.0:5555 --curve-keys {args.dir}   (keeps {secret} secret)")
    print(f"client: copy {args.dir}/client.key_secret and {args.dir}/server.key to the client, then --curve-keys DIR")
    print("worker of a broker: copy worker.key_secret and server.key, then serve --broker ADDR --curve-keys DIR")
    print(f"more clients: put their public .key files in {paths['authorized']}")
    print(f"more workers: put their public .key files in {paths['authorized_workers']}")
    print("secret keys (*.key_secret) are readable by their owner only (0600)")
    return 0


def run_broker(args) -> int:
    from ..service.broker import check_broker_exposure

    check_broker_exposure(args.frontend, args.backend, args.curve_keys, args.trusted_network)
    security = "CURVE, allow-listed keys" if args.curve_keys else "no encryption"
    print(f"scene-r1 broker: clients -> {args.frontend}, workers -> {args.backend} ({security})", flush=True)
    broker_from_args(args).serve()
    return 0


def broker_from_args(args):
    from ..service.broker import Broker

    return Broker(args.frontend, args.backend, curve_keys=args.curve_keys, max_message_bytes=max_message_bytes(args))
