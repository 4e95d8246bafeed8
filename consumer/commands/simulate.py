"""``interaction-consumer simulate``: synthetic dialer traffic, three ways.

``--topic`` produces it to Kafka paced in real time, with heartbeats
(:mod:`consumer.simulator.publish`); ``--output -`` prints it at once as ``kcat -J`` lines,
for ``replay``; ``--serve-api`` serves it as the Genesys Cloud Platform API, for ``poll``
(:mod:`consumer.simulator.dialer`). The long-running two stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
from typing import Any, Final

from consumer.commands import exits, options, signals
from consumer.observe import logs
from consumer.simulator import dialer
from consumer.simulator.publish import publish
from consumer.simulator.traffic import Simulator, TrafficSettings, kcat_lines

# the credentials the API double accepts unless GENESYS_CLIENT_ID/_SECRET say others
DOUBLE_CLIENT_ID: Final = "demo-client"
DOUBLE_SECRET: Final = "demo-secret"  # noqa: S105 - the double's made-up default, not a credential
PRINTED_SECONDS: Final = 60.0  # how much traffic --output prints unless --seconds says


def add_parser(commands: Any) -> None:
    """The ``simulate`` subcommand and its flags."""
    command = commands.add_parser(
        "simulate", help="publish synthetic dialer traffic to a topic, or print it as kcat -J lines"
    )
    command.set_defaults(main=main)
    target = command.add_mutually_exclusive_group(required=True)
    target.add_argument("--topic", help="produce to this topic, paced in real time")
    target.add_argument(
        "--output", choices=["-"], help="print kcat -J lines to stdout at once (for replay)"
    )
    target.add_argument(
        "--serve-api",
        type=options.host_port,
        metavar="HOST:PORT",
        help="serve the traffic as the Genesys Cloud Platform API (for poll), until stopped",
    )
    command.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    command.add_argument("--rate", type=float, default=5.0, help="interactions per second")
    command.add_argument(
        "--seconds", type=float, help="how long to start interactions (default: until stopped)"
    )
    command.add_argument("--speed", type=float, default=1.0, help="time compression factor")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--stall-share", type=float, default=0.1)
    command.add_argument("--malformed-share", type=float, default=0.02)


def main(args: argparse.Namespace) -> int:
    """Simulate as the flags say; the exit status."""
    traffic = TrafficSettings(
        rate=args.rate,
        speed=args.speed,
        seed=args.seed,
        stall_share=args.stall_share,
        malformed_share=args.malformed_share,
    )
    if args.output == "-":
        seconds = PRINTED_SECONDS if args.seconds is None else args.seconds
        start = time.time()
        sim = Simulator(traffic, start)
        records = sim.due(start + seconds) + sim.due(float("inf"), start_new=False)
        sys.stdout.buffer.writelines(kcat_lines(records, "simulated"))
        print(f"simulate: {len(records)} records, stalls {dict(sim.stalls)}", file=sys.stderr)
        return exits.OK
    settings = options.settings(args)
    logs.configure(settings.log.level, "text")
    if args.serve_api is not None:
        host, port = args.serve_api
        credentials = settings.genesys
        secret = credentials.client_secret
        body = functools.partial(
            dialer.serve,
            traffic,
            host,
            port,
            credentials.client_id or DOUBLE_CLIENT_ID,
            secret.reveal() if secret else DOUBLE_SECRET,
        )
    else:
        body = functools.partial(publish, settings.kafka, args.topic, traffic, args.seconds)
    asyncio.run(signals.until_stopped(body))
    return exits.OK
