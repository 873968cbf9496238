"""python -m sandbox --port 8100 [--seed N] [--state FILE] [--fault SYSTEM.KNOB=VALUE ...]
[--webhook SYSTEM=URL[#SECRET]]"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from sandbox.server import Sandbox, SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--seed", type=int, default=None, help="Seed for faults and ids.")
    parser.add_argument("--state", default=None, help="JSON file to keep state across restarts.")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SYSTEM.KNOB=VALUE",
        help="e.g. znode.error_rate=0.3, stripe.latency_ms=50 (repeatable).",
    )
    parser.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="SYSTEM=URL[#SECRET]",
        help="Deliver SYSTEM's webhooks to URL, signed/authorised with SECRET (repeatable).",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s sandbox %(levelname)s %(message)s",
    )

    sandbox = Sandbox(seed=args.seed, state_path=args.state)
    for item in args.fault:
        target, _, value = item.partition("=")
        system_name, _, knob = target.partition(".")
        if system_name not in sandbox.systems or not knob or not _:
            parser.error(f"--fault {item!r}: expected SYSTEM.KNOB=VALUE")
        try:
            sandbox.systems[system_name].faults.config.update({knob: value})
        except (KeyError, ValueError):
            parser.error(f"--fault {item!r}: unknown knob or bad value")
    from sandbox.webhooks import Endpoint

    for item in args.webhook:
        system_name, _, target = item.partition("=")
        url, _, secret = target.partition("#")
        dispatcher = getattr(sandbox.systems.get(system_name), "webhooks", None)
        if dispatcher is None or not url.startswith("http"):
            parser.error(f"--webhook {item!r}: expected SYSTEM=URL[#SECRET]")
        dispatcher.add_endpoint(Endpoint(url=url, secret=secret))

    server = SandboxServer(sandbox, args.host, args.port).start()
    print(f"sandbox listening on {server.url}", flush=True)
    for name in sandbox.systems:
        print(f"  {name:7} {server.url}/{name}", flush=True)
    print(f"  control {server.url}/_sandbox/faults", flush=True)

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            signal.pause() if hasattr(signal, "pause") else None
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
