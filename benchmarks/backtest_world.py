"""The backtest benchmarks' world: one set of command-line options and one way to build it (issue 14).

The full configuration by default (50 markets, 365 days of history, a 182-day horizon);
``--unmediated`` switches channels' branded-query path off, so their true effect is their direct one;
``--straighter`` multiplies channels' half-saturations (direct and query path), so their true curves
bend less at current spend than the world's defaults; ``--stronger`` multiplies their effects (direct and
query path), so the panel sees them against the same noise with a larger signal; ``--noise-seed``
redraws the signups' sampling noise alone.
"""

from __future__ import annotations

import argparse

import numpy as np

from causal.world import World


def add_world_options(ap: argparse.ArgumentParser) -> None:
    """The backtest world's options: the full configuration by default."""
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--geos", type=int, default=50)
    ap.add_argument("--history", type=int, default=365)
    ap.add_argument("--days", type=int, default=182)
    ap.add_argument(
        "--unmediated",
        default="",
        help="channels (comma list) whose branded-query path the world switches off: their true "
        "effect is then their direct one alone",
    )
    ap.add_argument(
        "--straighter",
        default="",
        help="channel:factor pairs (comma list, e.g. programmatic:3): the world's half-saturations of "
        "those channels, direct and query path, times the factor",
    )
    ap.add_argument(
        "--noise-seed",
        type=int,
        default=None,
        help="redraw only the signups' sampling noise from this seed (the world's curves, demand, "
        "plans and sizes stay those of --seed): how much of a seed's result is that draw",
    )
    ap.add_argument(
        "--stronger",
        default="",
        help="channel:factor pairs (comma list, e.g. programmatic:4): the world's effects of those "
        "channels, direct and query path, times the factor",
    )


def build_world(args: argparse.Namespace) -> World:
    """The world those options describe: history plus horizon, with channels changed as they say."""
    world = World(args.geos, args.history + args.days, seed=args.seed)
    if args.noise_seed is not None:
        world.z = np.random.default_rng([args.seed, args.noise_seed]).standard_normal(world.z.shape)
    for ch in filter(None, args.unmediated.split(",")):
        queries, half_saturation = world.mediated[ch]
        world.mediated[ch] = (queries * 0.0, half_saturation)
    for option, key in ((args.straighter, "half_saturation"), (args.stronger, "effect")):
        for pair in filter(None, option.split(",")):
            ch, factor = pair.split(":")
            change_channel(world, ch, **{key: float(factor)})
    return world


def change_channel(
    world: World, channel: str, *, effect: float = 1.0, half_saturation: float = 1.0
) -> None:
    """Multiply a channel's true effect and half-saturation, direct and query path, in place."""
    p = world.params[channel]
    p["beta"] = p["beta"] * effect
    p["half_saturation"] = p["half_saturation"] * half_saturation
    if channel in world.mediated:
        queries, k = world.mediated[channel]
        world.mediated[channel] = (queries * effect, k * half_saturation)
