r"""A simulated marketing world with known causal truth.

Every test and benchmark of liftlab can ask this world what *really* happened:
the true contribution of each channel, the true curves per market cluster, and
the true incremental signups of an experiment run inside it. The world contains
the mechanisms that make observational measurement wrong in known directions.

The generative model
--------------------
Markets :math:`g` belong to clusters :math:`c(g)` (North America, LATAM, EMEA,
APAC) and have a size :math:`s_g` (log-normal, mean one). For day :math:`t`:

*Organic demand* (what would sign up with no paid media)

.. math::

    O_{gt} = b\, s_g\, w_{\mathrm{dow}(t)}\, (1 + a \cos(2\pi(\mathrm{doy}_t - \phi_c)/365.25))\,
             e^{\gamma_c t/365}\, e^{L_{ct}}\, (p_{ct}/p_0)^{\epsilon}\, e^{u_{ct} + v_{gt}}

with weekly factors :math:`w`, a yearly cycle whose phase :math:`\phi_c` is
shifted half a year in the southern clusters, growth :math:`\gamma_c`, the
title-launch index :math:`L_{ct}` (column ``launch``: for each launch of
strength :math:`k`, a pre-launch buzz ramp over seven days, a spike on the
day, then exponential decay with a six-day time constant), the competitor's
price :math:`p_{ct}` (column ``competitor_price``, piecewise constant, price
elasticity :math:`\epsilon`), and two AR(1) deviations in logs: a cluster one
:math:`u_{ct}` (:math:`\rho=0.9`) and a geo one :math:`v_{gt}` (:math:`\rho=0.8`),
so daily market deviations persist for days as in real geo data.

*Paid channels* ``nonbrand_search``, ``social``, ``programmatic``, ``ctv`` and
optionally ``partnerships`` spend a planned budget :math:`x_{gt}` (size times a
level, a cluster-wide weekly random walk, a geo-level weekly deviation, and
for CTV flighting weeks off air). Their *normalised geometric adstock*
:math:`A_{gt} = (1-\lambda_c) x_{gt}/s_g + \lambda_c A_{g,t-1}` enters a Hill curve

.. math:: D^{ch}_{gt} = s_g\, \beta_c^{ch}\, \frac{A^{s}}{K_c^{s} + A^{s}}.

*Branded queries* follow organic demand and are raised by CTV and programmatic:
:math:`Q_{gt} = q\,O_{gt}\,e^{\eta_{gt}} + M_{gt}` with the mediated queries
:math:`M_{gt} = s_g \sum_{ch\in\{ctv, programmatic\}} m_c^{ch} \mathrm{Hill}(A^{ch}_{gt}; K^{q}, 1)`
(column ``brand_queries``). A share :math:`r` of the mediated queries become
signups, so part of CTV's and programmatic's effect travels through branded
search.

*Branded search spend follows the queries*: :math:`x^{bs}_{gt} = \mathrm{cpc}_c\, Q_{gt}\, e^{\zeta_{gt}}`.
Its own incremental effect :math:`D^{bs}` (a Hill curve of its adstock) is small:
most people who search the brand would have clicked the organic result.

*Signups* :math:`\mu_{gt} = O_{gt} + r M_{gt} + \sum_{ch} D^{ch}_{gt}` and
:math:`y_{gt} = \mathrm{round}(\max(0, \mu_{gt} + \sqrt{\mu_{gt}}\, z_{gt}))`
with standard normal :math:`z_{gt}` drawn once.

Every random draw is made when the world is built, from one seed. Running the
world again with other spend (an experiment, a plan, a channel switched off)
reuses the same draws, so differences between runs are exact causal effects:

* a channel's *true contribution* is total signups minus total signups with that
  channel's spend at zero everywhere (its total effect, mediated part included);
* an experiment's *true incremental signups* are treated-geo signups over the
  test window with the intervention minus the same without it.

A naive regression of signups on spend credits branded search with most of
organic demand (its spend rises with demand) and hands CTV's mediated effect to
branded search: the biases that liftlab's experiments and calibration correct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from causal.errors import ConfigError
from causal.transforms import geometric_adstock, hill
from causal.world_params import (  # noqa: F401  (re-exported: old import paths keep working)
    _BASE_PRICE,
    _CHANNEL,
    _CLUSTER_FACTOR,
    _CLUSTER_PREFIX,
    _CLUSTER_SHARE,
    _CPC,
    _GROWTH,
    _MEDIATED,
    _PRICE_ELASTICITY,
    _WEEKLY,
    _YEARLY_AMPLITUDE,
    _YEARLY_PHASE,
    BASE_SIGNUPS,
    CLUSTERS,
    DEFAULT_CHANNELS,
    EXOGENOUS_CHANNELS,
    EXPERIMENT_KINDS,
    EXTRA_PREFIX,
    MEDIATED_CHANNELS,
    MEDIATED_CONVERSION,
    QUERIES_PER_SIGNUP,
    _ar1,
    _channel_decay,
    channel_table,
    cluster_factor,
)


@dataclass(frozen=True)
class Experiment:
    """An intervention on one channel's spend in some geos over a window.

    Parameters
    ----------
    channel : str
        The channel whose spend is changed.
    geos : sequence of str
        The treated geos.
    start, end : str
        First and last day of the test (inclusive).
    multiplier : float, default=0.0
        Spend in the treated geos and window is the business-as-usual spend
        times this (0 go-dark, 0.5 holdback, 2 heavy-up).
    name : str, default=""
        A label, used in ``truth.json``.
    """

    channel: str
    geos: tuple[str, ...]
    start: str
    end: str
    multiplier: float = 0.0
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> Experiment:
        """Parse ``CHANNEL:KIND_OR_MULTIPLIER:GEO1,GEO2:START:END``."""
        parts = text.split(":")
        if len(parts) != 5:
            raise ConfigError(
                f"experiment '{text}' must read CHANNEL:KIND:GEO1,GEO2:START:END "
                f"with KIND one of {', '.join(EXPERIMENT_KINDS)} or a spend multiplier"
            )
        channel, kind, geos, start, end = parts
        if kind in EXPERIMENT_KINDS:
            mult = EXPERIMENT_KINDS[kind]
        else:
            try:
                mult = float(kind)
            except ValueError as exc:
                raise ConfigError(
                    f"experiment '{text}': '{kind}' is neither a kind ({', '.join(EXPERIMENT_KINDS)}) nor a number"
                ) from exc
        return cls(
            channel,
            tuple(g.strip() for g in geos.split(",") if g.strip()),
            start,
            end,
            mult,
            name=f"{channel}_{kind}",
        )


@dataclass
class WorldRun:
    """Everything one run of the world produced, as (days x geos) arrays."""

    signups: np.ndarray
    spend: dict[str, np.ndarray]
    brand_queries: np.ndarray
    organic: np.ndarray
    direct: dict[str, np.ndarray] = field(repr=False)
    mediated_queries: dict[str, np.ndarray] = field(repr=False)

    def media_caused(self, rows: slice = slice(None)) -> np.ndarray:
        """Expected media-caused signups per day and geo over ``rows``: every channel's direct response
        plus the signups its mediated branded queries convert into (``MEDIATED_CONVERSION``)."""
        return sum(d[rows] for d in self.direct.values()) + MEDIATED_CONVERSION * sum(
            m[rows] for m in self.mediated_queries.values()
        )


class World:
    """A seeded marketing world; see the module docstring for the equations.

    Parameters
    ----------
    n_geos : int, default=50
        Number of markets, split over the four clusters.
    n_days : int, default=730
        Number of days.
    seed : int, default=0
        Seed of every random draw.
    start : str, default="2024-01-01"
        First date.
    partnerships : bool, default=False
        Add the ``partnerships`` channel.
    extra_channels : int, default=0
        Add this many upper-funnel channels ``upper_1``.. (planned spend like the
        other exogenous channels, drawn from a separate stream so the default
        channels' draws are unchanged): for scale benchmarks with more channels.
    brand_spend_noise : float, default=0.05
        Log-sd of branded-search spend around cost per query times queries
        (:math:`\\zeta_{gt}`). Small: its spend follows organic demand closely
        (strong confounding); large (e.g. 0.3): its spend moves on its own.
    demand_following : float, default=0.0
        Elasticity of the other channels' planned spend to organic demand: the
        plan is multiplied by :math:`(O_{gt}/\\bar O_g)^k`, as when a media team
        heavies up around launches and peak season (confounding of the
        upper funnel). 0 keeps spend set by the media plan alone.
    brand_strength : float, default=1.0
        Multiplier of branded search's true direct effect (:math:`\\beta^{bs}`):
        0.2 a world where it truly is weak, 6 one where it truly is strong.
    observe_queries : bool, default=True
        Whether the panel carries the ``brand_queries`` column (the mediator).

    Non-default options never change the random draws, only how they are used,
    so worlds that differ in options share their organic demand and noise; the
    default options give the same panel and truth as before they existed.
    """

    def __init__(
        self,
        n_geos: int = 50,
        n_days: int = 730,
        *,
        seed: int = 0,
        start: str = "2024-01-01",
        partnerships: bool = False,
        extra_channels: int = 0,
        brand_spend_noise: float = 0.05,
        demand_following: float = 0.0,
        brand_strength: float = 1.0,
        observe_queries: bool = True,
    ) -> None:
        if n_geos < 4:
            raise ConfigError(f"--geos must be at least 4 (one per cluster), got {n_geos}")
        if n_days < 28:
            raise ConfigError(f"--days must be at least 28, got {n_days}")
        for name, value in (
            ("brand_spend_noise", brand_spend_noise),
            ("brand_strength", brand_strength),
        ):
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
        if not np.isfinite(demand_following):
            raise ConfigError(f"demand_following must be finite, got {demand_following}")
        self.n_geos, self.n_days, self.seed, self.start = int(n_geos), int(n_days), int(seed), start
        if not isinstance(extra_channels, int | np.integer) or extra_channels < 0:
            raise ConfigError(f"extra_channels must be an integer >= 0, got {extra_channels!r}")
        self.extra_channels = int(extra_channels)
        self.channels = (
            DEFAULT_CHANNELS
            + (("partnerships",) if partnerships else ())
            + tuple(f"{EXTRA_PREFIX}{i + 1}" for i in range(self.extra_channels))
        )
        self.brand_spend_noise = float(brand_spend_noise)
        self.demand_following = float(demand_following)
        self.brand_strength = float(brand_strength)
        self.observe_queries = bool(observe_queries)
        self._build(np.random.default_rng(seed))

    @property
    def options(self) -> dict:
        """The world's options that differ from the defaults (empty for the default world)."""
        defaults = {
            "brand_spend_noise": 0.05,
            "demand_following": 0.0,
            "brand_strength": 1.0,
            "observe_queries": True,
        }
        return {k: getattr(self, k) for k, v in defaults.items() if getattr(self, k) != v}

    def clusters(self) -> pd.DataFrame:
        """The market cluster of each geo, as ``geo, cluster`` rows (what ``clusters.csv`` holds).

        Models should read clusters from this mapping (or a user's file), not
        from the geo ids' prefixes.
        """
        return pd.DataFrame({"geo": self.geos, "cluster": [CLUSTERS[c] for c in self.cluster_of]})

    # -- construction: every random draw happens here -------------------------
    def _build(self, rng: np.random.Generator) -> None:
        T, G = self.n_days, self.n_geos
        self.dates = pd.date_range(self.start, periods=T, freq="D")
        counts = np.floor(_CLUSTER_SHARE * G).astype(int)
        counts[np.argsort(-(_CLUSTER_SHARE * G - counts))[: G - counts.sum()]] += 1
        self.cluster_of = np.repeat(np.arange(4), counts)
        self.geos = [
            f"{_CLUSTER_PREFIX[CLUSTERS[c]]}{i + 1:02d}" for c in range(4) for i in range(counts[c])
        ]
        size = rng.lognormal(0.0, 0.7, G)
        self.size = size / size.mean()
        cl = [CLUSTERS[c] for c in self.cluster_of]
        t = np.arange(T)
        doy = self.dates.day_of_year.to_numpy()

        # Title-launch calendar: global launches every 4 to 9 weeks, strength by cluster.
        launch = np.zeros((T, 4))
        day = int(rng.integers(10, 40))
        self.launches: list[dict] = []
        while day < T:
            strength = rng.uniform(0.12, 0.45) * rng.uniform(0.5, 1.5, 4)
            rel = t - day
            profile = np.where(
                rel < 0,
                np.where(rel >= -7, 0.3 * (1 + rel / 8.0), 0.0),
                np.exp(-np.maximum(rel, 0) / 6.0),
            )
            launch += profile[:, None] * strength[None, :]
            self.launches.append(
                {
                    "date": self.dates[day].date().isoformat(),
                    "strength": dict(zip(CLUSTERS, np.round(strength, 4).tolist())),
                }
            )
            day += int(rng.integers(28, 64))
        self.launch = launch[:, self.cluster_of]

        # Competitor price: piecewise constant per cluster.
        price = np.full((T, 4), _BASE_PRICE)
        for c in range(4):
            p, d = _BASE_PRICE, 0
            while d < T:
                nxt = d + int(rng.integers(45, 150))
                price[d:nxt, c] = p
                p = float(np.round(_BASE_PRICE * rng.uniform(0.8, 1.2), 2))
                d = nxt
        self.competitor_price = price[:, self.cluster_of]

        # Autocorrelated log deviations: cluster-wide and geo-level AR(1).
        u = _ar1(rng.normal(0.0, 0.015, (T, 4)), 0.9)[:, self.cluster_of]
        v = _ar1(rng.normal(0.0, 0.025, (T, G)), 0.8)
        weekly = _WEEKLY[self.dates.day_of_week.to_numpy()][:, None]
        phase = np.array([_YEARLY_PHASE[c] for c in cl])
        yearly = 1.0 + _YEARLY_AMPLITUDE * np.cos(
            2 * np.pi * (doy[:, None] - phase[None, :]) / 365.25
        )
        growth = np.exp(np.outer(t / 365.0, [_GROWTH[c] for c in cl]))
        price_effect = (self.competitor_price / _BASE_PRICE) ** _PRICE_ELASTICITY
        self.organic = (
            BASE_SIGNUPS
            * self.size
            * weekly
            * yearly
            * growth
            * np.exp(self.launch)
            * price_effect
            * np.exp(u + v)
        )

        # Planned spend of the exogenous channels: weekly budgets with variation.
        week = t // 7
        n_weeks = week[-1] + 1
        self.planned: dict[str, np.ndarray] = {}
        extra_rng = np.random.default_rng([self.seed, 13])
        for ch in self.channels:
            if ch == "brand_search":
                continue
            level = channel_table(ch)[0]
            # Extra channels draw from their own stream, so the default channels' draws never move.
            rng_ch = rng if ch in _CHANNEL else extra_rng
            cluster_walk = np.cumsum(rng_ch.normal(0.0, 0.08, (n_weeks, 4)), axis=0)
            cluster_walk -= cluster_walk.mean(axis=0)
            geo_dev = rng_ch.normal(0.0, 0.25, (n_weeks, G))
            log_budget = cluster_walk[week][:, self.cluster_of] + geo_dev[week]
            plan = level * self.size * np.exp(log_budget) * np.exp(rng_ch.normal(0.0, 0.05, (T, G)))
            if ch == "ctv":
                off = rng.random((n_weeks, G)) < 0.2
                plan = np.where(off[week], 0.1 * plan, plan)
            self.planned[ch] = plan
        if self.demand_following:
            # Spend planned around demand: heavier at launches and in season, per geo.
            follow = (self.organic / self.organic.mean(axis=0)) ** self.demand_following
            self.planned = {ch: plan * follow for ch, plan in self.planned.items()}
        self.query_noise = rng.normal(0.0, 0.03, (T, G))
        self.cpc = np.array([_CPC[c] for c in cl])
        # Same standard-normal draws whatever the scale (numpy draws loc + scale * z).
        self.brand_noise = rng.normal(0.0, self.brand_spend_noise, (T, G))
        self.z = rng.standard_normal((T, G))

        # Per-geo parameters, by cluster.
        strength = {
            ch: self.brand_strength if ch == "brand_search" else 1.0 for ch in self.channels
        }
        self.params = {
            ch: {
                "beta": np.array(
                    [channel_table(ch)[1] * cluster_factor(c, ch) * strength[ch] for c in cl]
                ),
                "half_saturation": channel_table(ch)[2],
                "shape": channel_table(ch)[3],
                "decay": np.array([_channel_decay(ch, c) for c in cl]),
            }
            for ch in self.channels
        }
        self.mediated = {
            ch: (
                np.array([_MEDIATED[ch][0] * _CLUSTER_FACTOR[c][ch] for c in cl]),
                _MEDIATED[ch][1],
            )
            for ch in MEDIATED_CHANNELS
        }

    # -- running --------------------------------------------------------------
    def run(
        self,
        multipliers: Mapping[str, np.ndarray | float] | None = None,
        spend: Mapping[str, np.ndarray] | None = None,
    ) -> WorldRun:
        """Run the world under the same draws with other spend.

        Parameters
        ----------
        multipliers : mapping channel -> float or (days x geos) array, optional
            Business-as-usual spend is multiplied by this (0 switches a channel off).
        spend : mapping channel -> (days x geos) array, optional
            Spend that replaces business as usual outright (a plan). For
            ``brand_search`` it replaces the query-following spend.
        """
        multipliers = dict(multipliers or {})
        spend = dict(spend or {})
        for ch in [*multipliers, *spend]:
            if ch not in self.channels:
                raise ConfigError(
                    f"channel '{ch}' is not in this world (channels: {', '.join(self.channels)})"
                )
        T, G = self.n_days, self.n_geos
        spends: dict[str, np.ndarray] = {}
        direct: dict[str, np.ndarray] = {}
        adstocked: dict[str, np.ndarray] = {}
        for ch in self.channels:
            if ch == "brand_search":
                continue
            x = (
                np.asarray(spend[ch], float)
                if ch in spend
                else self.planned[ch] * multipliers.get(ch, 1.0)
            )
            spends[ch] = np.broadcast_to(x, (T, G)).astype(float)
            adstocked[ch] = geometric_adstock(spends[ch] / self.size, self.params[ch]["decay"])
            direct[ch] = self._curve(ch, adstocked[ch])
        mediated = {
            ch: self.size * self.mediated[ch][0] * hill(adstocked[ch], self.mediated[ch][1], 1.0)
            for ch in MEDIATED_CHANNELS
        }
        med_total = sum(mediated.values())
        queries = QUERIES_PER_SIGNUP * self.organic * np.exp(self.query_noise) + med_total
        if "brand_search" in spend:
            bs = np.broadcast_to(np.asarray(spend["brand_search"], float), (T, G)).astype(float)
        else:
            bs = (
                self.cpc * queries * np.exp(self.brand_noise) * multipliers.get("brand_search", 1.0)
            )
        spends = {"brand_search": np.asarray(bs, float), **spends}
        direct["brand_search"] = self._curve(
            "brand_search", geometric_adstock(bs / self.size, self.params["brand_search"]["decay"])
        )
        mu = self.organic + MEDIATED_CONVERSION * med_total + sum(direct.values())
        y = np.round(np.maximum(mu + np.sqrt(mu) * self.z, 0.0))
        return WorldRun(y, spends, queries, self.organic, direct, mediated)

    def _curve(self, ch: str, adstock: np.ndarray) -> np.ndarray:
        p = self.params[ch]
        return self.size * p["beta"] * hill(adstock, p["half_saturation"], p["shape"])

    def _multipliers(self, experiments: Sequence[Experiment]) -> dict[str, np.ndarray]:
        mult: dict[str, np.ndarray] = {}
        for e in experiments:
            if e.channel not in self.channels:
                raise ConfigError(
                    f"experiment channel '{e.channel}' is not in this world (channels: {', '.join(self.channels)})"
                )
            rows = self._window(e)
            cols = self._geo_positions(e.geos)
            m = mult.setdefault(e.channel, np.ones((self.n_days, self.n_geos)))
            m[np.ix_(rows, cols)] *= e.multiplier
        return mult

    def _window(self, e: Experiment) -> np.ndarray:
        try:
            s, t = pd.Timestamp(e.start), pd.Timestamp(e.end)
        except ValueError as exc:
            raise ConfigError(f"experiment dates '{e.start}'..'{e.end}' are not ISO dates") from exc
        if s > t:
            raise ConfigError(f"experiment start {e.start} is after its end {e.end}")
        if s < self.dates[0] or t > self.dates[-1]:
            raise ConfigError(
                f"experiment window {e.start}..{e.end} is outside the world's dates "
                f"{self.dates[0].date()}..{self.dates[-1].date()}"
            )
        return np.flatnonzero((self.dates >= s) & (self.dates <= t))

    def _geo_positions(self, geos: Sequence[str]) -> list[int]:
        index = {g: i for i, g in enumerate(self.geos)}
        missing = [g for g in geos if g not in index]
        if missing:
            raise ConfigError(
                f"experiment geo '{missing[0]}' is not in this world (geos are {self.geos[0]}..{self.geos[-1]})"
            )
        return [index[g] for g in geos]

    # -- outputs ----------------------------------------------------------------
    def panel(self, run: WorldRun | None = None) -> pd.DataFrame:
        """The observable long panel of a run (business as usual by default)."""
        run = run or self.run()
        T, G = self.n_days, self.n_geos
        data = {
            "date": np.repeat(self.dates.strftime("%Y-%m-%d").to_numpy(), G),
            "geo": np.tile(np.array(self.geos, dtype=object), T),
            "signups": run.signups.ravel().astype(np.int64),
        }
        for ch in self.channels:
            data[f"spend_{ch}"] = np.round(run.spend[ch].ravel(), 2)
        if self.observe_queries:
            data["brand_queries"] = np.round(run.brand_queries.ravel()).astype(np.int64)
        data["launch"] = np.round(self.launch.ravel(), 4)
        data["competitor_price"] = self.competitor_price.ravel()
        return pd.DataFrame(data)

    def simulate(self, experiments: Sequence[Experiment] = ()) -> tuple[pd.DataFrame, dict]:
        """The observed panel with the experiments applied, and the truth."""
        base = self.run()
        observed = self.run(self._multipliers(experiments)) if experiments else base
        return self.panel(observed), self.truth(experiments, base=base, observed=observed)

    def experiment_truth(self, e: Experiment, *, base: WorldRun | None = None) -> dict:
        """True incremental signups and spend change of one experiment run alone."""
        base = base or self.run()
        run = self.run(self._multipliers([e]))
        rows, cols = self._window(e), self._geo_positions(e.geos)
        sel = np.ix_(rows, cols)
        after = np.arange(rows[-1] + 1, min(self.n_days, rows[-1] + 1 + 28))
        incr = float((run.signups[sel] - base.signups[sel]).sum())
        mu_incr = float(
            sum((run.direct[c] - base.direct[c])[sel].sum() for c in run.direct)
            + MEDIATED_CONVERSION
            * sum(
                (run.mediated_queries[c] - base.mediated_queries[c])[sel].sum()
                for c in run.mediated_queries
            )
        )
        carry = (
            float((run.signups[np.ix_(after, cols)] - base.signups[np.ix_(after, cols)]).sum())
            if len(after)
            else 0.0
        )
        spend_delta = float((run.spend[e.channel][sel] - base.spend[e.channel][sel]).sum())
        counterfactual = float(base.signups[sel].sum())
        return {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(e).items()},
            "true_incremental": incr,
            "true_incremental_expected": mu_incr,
            "true_incremental_after_end_28d": carry,
            "observed": float(run.signups[sel].sum()),
            "counterfactual": counterfactual,
            "true_lift": incr / counterfactual if counterfactual else None,
            "spend_delta": spend_delta,
            "true_incremental_per_spend": incr / spend_delta if spend_delta else None,
        }

    def true_contributions(
        self, base: WorldRun | None = None, experiments: Sequence[Experiment] = ()
    ) -> dict[str, float]:
        """Signups each channel causes over the panel: total minus total with it switched off.

        With ``experiments``, over the observed panel that ran them (the spend
        a model fitted on that panel sees), not business as usual.
        """
        if experiments:
            mult = self._multipliers(experiments)
            total = self.run(mult).signups.sum()
            return {
                ch: float(total - self.run({**mult, ch: 0.0}).signups.sum()) for ch in self.channels
            }
        base = base or self.run()
        total = base.signups.sum()
        return {ch: float(total - self.run({ch: 0.0}).signups.sum()) for ch in self.channels}

    def true_curves(self) -> list[dict]:
        """True steady-state curves per cluster, in cluster totals (sizes summed).

        A geo's direct response is ``s_g * beta * hill(x / s_g)``; spending a
        cluster budget in proportion to size gives ``S * beta * hill(X / S)``
        with ``S`` the cluster's total size, so the cluster curve is a Hill curve
        with ``beta * S`` and ``half_saturation * S``. ``mediated`` is the
        branded-query path, in signups (queries times the conversion share).
        """
        out = []
        for c, name in enumerate(CLUSTERS):
            members = self.cluster_of == c
            if not members.any():
                continue
            S = float(self.size[members].sum())
            for ch in self.channels:
                p = self.params[ch]
                i = int(np.flatnonzero(members)[0])
                entry = {
                    "name": ch,
                    "market": name,
                    "response": {
                        "form": "hill",
                        "beta": float(p["beta"][i] * S),
                        "half_saturation": float(p["half_saturation"] * S),
                        "shape": float(p["shape"]),
                    },
                    "adstock": {"form": "geometric", "decay": float(p["decay"][i])},
                    "per_unit_size": {
                        "beta": float(p["beta"][i]),
                        "half_saturation": float(p["half_saturation"]),
                    },
                }
                if ch in self.mediated:
                    m, k = self.mediated[ch]
                    entry["mediated"] = {
                        "form": "hill",
                        "beta": float(MEDIATED_CONVERSION * m[i] * S),
                        "half_saturation": float(k * S),
                        "shape": 1.0,
                        "via": "brand_queries",
                    }
                if ch == "brand_search":
                    entry["spend_rule"] = {"cost_per_query": float(self.cpc[i])}
                out.append(entry)
        return out

    def truth(
        self,
        experiments: Sequence[Experiment] = (),
        *,
        base: WorldRun | None = None,
        observed: WorldRun | None = None,
    ) -> dict:
        """The ground truth as written to ``truth.json``."""
        base = base or self.run()
        observed = observed or base
        contributions = self.true_contributions(base)
        organic = float(self.run({ch: 0.0 for ch in self.channels}).signups.sum())
        # Written only for non-default worlds so the default truth.json keeps its bytes.
        extra = {"options": self.options} if self.options else {}
        return {
            "seed": self.seed,
            "n_geos": self.n_geos,
            "n_days": self.n_days,
            "dates": [self.dates[0].date().isoformat(), self.dates[-1].date().isoformat()],
            "outcome": "signups",
            "channels": list(self.channels),
            "total_signups": float(base.signups.sum()),
            "organic_signups": organic,
            "contributions": contributions,
            "total_spend": {ch: float(base.spend[ch].sum()) for ch in self.channels},
            "true_roas": {
                ch: contributions[ch] / float(base.spend[ch].sum()) for ch in self.channels
            },
            "geos": [
                {"geo": g, "cluster": CLUSTERS[c], "size": float(s)}
                for g, c, s in zip(self.geos, self.cluster_of, self.size)
            ],
            "curves": self.true_curves(),
            "mediation": {
                "queries_per_organic_signup": QUERIES_PER_SIGNUP,
                "mediated_conversion": MEDIATED_CONVERSION,
                "mediated_channels": list(MEDIATED_CHANNELS),
            },
            "launches": self.launches,
            "experiments": [self.experiment_truth(e, base=base) for e in experiments],
            "observed_total_signups": float(observed.signups.sum()),
            **extra,
        }
