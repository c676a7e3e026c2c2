r"""The marketing causal graph: identification of each channel's total effect with DoWhy.

The default graph encodes why observational credit is wrong:

* organic demand (unobserved), season and title launches drive branded queries
  and signups;
* branded queries drive branded-search spend (bidding follows query volume)
  and signups (people who search the brand sign up anyway);
* CTV and programmatic drive branded queries (part of their effect travels
  through branded search);
* competitor price drives signups; every channel drives signups.

For each channel DoWhy's backdoor criterion gives the adjustment set of its
**total** effect (Pearl 2009, ch. 3): descendants of the channel (mediators
such as branded queries for CTV) are never adjusted for. Branded search is
identified by adjusting for branded queries, which block the path from
organic demand. A joint response model can only use controls valid for every
channel at once, i.e. covariates that are not descendants of any channel
(:func:`joint_controls`): branded queries are excluded there, which is why
branded search stays confounded in the observational curves and experiments
are needed to calibrate it.

Graphs are read from DOT (``digraph { a -> b; }``) or GML. Nodes named like a
channel (``ctv``) or its spend column (``spend_ctv``) mean that channel; nodes
with no column in the data are unobserved.

References
----------
Pearl, J. (2009). Causality (2nd ed.). Cambridge University Press.
Sharma, A., & Kiciman, E. (2020). DoWhy: An end-to-end library for causal inference. arXiv:2011.04216.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from causal.errors import DataError
from causal.panel import SPEND_PREFIX, Panel

ORGANIC = "organic_demand"
SEASON = "season"
LAUNCH = "launch"
QUERIES = "brand_queries"
PRICE = "competitor_price"
UPPER_FUNNEL = ("ctv", "programmatic")
BRAND_SEARCH = "brand_search"


def default_graph(channels: Sequence[str], outcome: str = "signups") -> nx.DiGraph:
    """The default marketing DAG over ``spend_<channel>`` nodes (see the module docstring)."""
    g = nx.DiGraph()
    y = outcome
    for driver in (ORGANIC, SEASON, LAUNCH):
        g.add_edge(driver, QUERIES)
        g.add_edge(driver, y)
    g.add_edge(QUERIES, y)
    g.add_edge(PRICE, y)
    for ch in channels:
        node = SPEND_PREFIX + ch
        g.add_edge(node, y)
        if ch == BRAND_SEARCH:
            g.add_edge(QUERIES, node)
        if ch in UPPER_FUNNEL:
            g.add_edge(node, QUERIES)
    return g


_DOT_ID = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?)'


def _dot_name(token: str) -> str:
    token = token.strip()
    return token[1:-1] if token.startswith('"') and token.endswith('"') else token


def parse_dot(text: str, source: str = "<dot>") -> nx.DiGraph:
    """Parse a DOT digraph's nodes and edges (``a -> b -> c;``, ``a -> {b c}``); attributes are ignored."""
    body = re.sub(r"//[^\n]*|#[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    m = re.search(r"digraph\s*(?:" + _DOT_ID + r")?\s*\{(.*)\}", body, flags=re.S)
    if not m:
        raise DataError(f"{source}: not a DOT digraph (expected 'digraph {{ a -> b; }}')")
    inner = re.sub(r"\[[^\]]*\]", "", m.group(1))
    g = nx.DiGraph()
    for stmt in re.split(r"[;\n]", inner):
        stmt = stmt.strip()
        if (
            not stmt
            or re.match(r"^(graph|node|edge)\b", stmt)
            or ("=" in stmt and "->" not in stmt)
        ):
            continue
        if "--" in stmt:
            raise DataError(f"{source}: undirected edge in '{stmt}'; a causal graph needs '->'")
        parts = [p.strip() for p in stmt.split("->")]
        groups = []
        for p in parts:
            names = re.findall(_DOT_ID, p.strip("{} "))
            if not names:
                raise DataError(f"{source}: cannot read the DOT statement '{stmt}'")
            groups.append([_dot_name(n) for n in names])
        for grp in groups:
            g.add_nodes_from(grp)
        for a, b in zip(groups, groups[1:]):
            g.add_edges_from((u, v) for u in a for v in b)
    return g


def read_graph(path: str | Path) -> nx.DiGraph:
    """Read a causal graph from a DOT (``.dot``/``.gv``) or GML (``.gml``) file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read graph file ({exc.strerror or exc})") from exc
    if path.suffix.lower() == ".gml" or text.lstrip().startswith("graph"):
        try:
            g = nx.parse_gml(text, label="label")
        except (nx.NetworkXError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as GML ({exc})") from exc
        if not g.is_directed():
            raise DataError(f"{path}: the GML graph is undirected; add 'directed 1'")
        g = nx.DiGraph(g)
    else:
        g = parse_dot(text, str(path))
    if not nx.is_directed_acyclic_graph(g):
        cycle = " -> ".join(str(u) for u, _ in nx.find_cycle(g))
        raise DataError(f"{path}: the graph has a cycle ({cycle}); a causal graph must be acyclic")
    return g


def normalise(graph: nx.DiGraph, channels: Sequence[str], outcome: str) -> nx.DiGraph:
    """Rename channel nodes to ``spend_<channel>`` and check the outcome is there."""
    mapping = {ch: SPEND_PREFIX + ch for ch in channels if ch in graph}
    # copy=True merges a channel node into an existing spend_<channel> node (both spellings used).
    g = nx.relabel_nodes(graph, mapping, copy=True)
    if outcome not in g:
        raise DataError(
            f"the causal graph has no node '{outcome}' (the outcome); nodes: {', '.join(map(str, g.nodes))}"
        )
    return g


def joint_controls(
    graph: nx.DiGraph, channels: Sequence[str], covariates: Sequence[str]
) -> list[str]:
    """Covariates a joint model of all channels may adjust for: in the graph, not descending from any channel."""
    desc: set = set()
    for ch in channels:
        node = SPEND_PREFIX + ch
        if node in graph:
            desc |= nx.descendants(graph, node)
    return [c for c in covariates if c in graph and c not in desc]


def check_identifiable(
    graph: nx.DiGraph,
    channels: Sequence[str],
    observed: Sequence[str],
    *,
    outcome: str = "signups",
    source: str = "the causal graph",
    allow_missing: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Back-door adjustment set of each channel's total effect, or a :class:`DataError` naming the channel.

    The candidate set is every observed non-descendant of the channel's spend node (other channels' spend
    included); ``allow_missing`` nodes count as observed (the caller handles their absence, e.g. a mediator
    column whose absence widens the intervals instead). A channel whose back-door paths to the outcome stay
    open given that set is not identified from observational data by this graph.
    """
    obs = set(observed) | set(allow_missing) | {SPEND_PREFIX + ch for ch in channels}
    out = {}
    if outcome not in graph:
        raise DataError(f"{source}: no node '{outcome}' (the outcome)")
    for ch in channels:
        node = SPEND_PREFIX + ch
        if node not in graph:
            continue
        desc = nx.descendants(graph, node)
        z = sorted(n for n in graph if n in obs and n != node and n not in desc)
        g = graph.copy()
        g.remove_edges_from(list(graph.out_edges(node)))
        if not nx.is_d_separator(g, {node}, {outcome}, set(z)):
            hidden = sorted(str(p) for p in graph.predecessors(node) if p not in obs)
            raise DataError(
                f"{source}: channel '{ch}' is not identifiable: a back-door path from its spend to "
                f"'{outcome}' stays open given the observed variables"
                + (f" (its spend follows unobserved {', '.join(hidden)})" if hidden else "")
            )
        out[ch] = z
    return out


def graph_layout(graph: nx.DiGraph) -> tuple[nx.DiGraph, dict]:
    """A sorted copy of the graph and its layered layout (causes above effects).

    Nodes and edges are sorted by name first: the layout must not depend on set iteration order,
    which changes with PYTHONHASHSEED.
    """
    g = nx.DiGraph()
    g.add_nodes_from(sorted(graph.nodes, key=str))
    g.add_edges_from(sorted(graph.edges, key=lambda e: (str(e[0]), str(e[1]))))
    layers = {n: 0 for n in g}
    for n in nx.topological_sort(g):
        for s in g.successors(n):
            layers[s] = max(layers[s], layers[n] + 1)
    # Our own placement (networkx's multipartite layout groups layers through a set): each layer a row,
    # its nodes in name order, spread evenly over [-1, 1].
    pos = {}
    for layer in sorted(set(layers.values())):
        row = sorted((n for n in g if layers[n] == layer), key=str)
        xs = np.linspace(-1.0, 1.0, len(row)) if len(row) > 1 else np.zeros(1)
        for x, n in zip(xs, row):
            pos[n] = (float(x), -float(layer))
    return g, pos


def to_gml(graph: nx.DiGraph) -> str:
    return "\n".join(nx.generate_gml(graph))


@dataclass
class GraphAnalysis:
    """Naive, graph-adjusted and experimental estimates per channel, with refutations.

    Attributes
    ----------
    table : DataFrame (channels)
        ``adjustment_set``, ``naive``, ``adjusted``, ``adjusted_lo``/``adjusted_hi``,
        ``experimental`` (and its interval), in outcome per unit of spend.
    refutations : DataFrame
        One row per (channel, refuter): original and new effect, DoWhy's p-value,
        and a permutation p-value for the placebo.
    graph : nx.DiGraph
    notes : list of str
    """

    table: pd.DataFrame
    refutations: pd.DataFrame
    graph: nx.DiGraph
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "estimates": _records(self.table.reset_index()),
            "refutations": _records(self.refutations),
            "edges": [[str(u), str(v)] for u, v in self.graph.edges],
            "notes": self.notes,
        }

    def summary(self) -> str:
        lines = ["Channel effects per unit spend: naive vs graph-adjusted vs experimental"]
        for ch, r in self.table.iterrows():
            exp = "—" if pd.isna(r["experimental"]) else f"{r['experimental']:.4g}"
            lines.append(
                f"  {ch:<16} naive {r['naive']:.4g}  adjusted {r['adjusted']:.4g} "
                f"(adjusting for {r['adjustment_set'] or 'nothing'})  experimental {exp}"
            )
        return "\n".join(lines)

    def plot(self, *, ax=None):
        """Draw the graph (channels blue, unobserved grey, outcome red)."""
        import matplotlib.pyplot as plt

        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(11, 5))
        g, pos = graph_layout(self.graph)
        observed = self.table.attrs.get("observed", set())
        colors = [
            "#d9534f"
            if n == self.table.attrs.get("outcome")
            else "#2f5fa7"
            if str(n).startswith(SPEND_PREFIX)
            else "#bbbbbb"
            if n not in observed
            else "#5cb85c"
            for n in g
        ]
        # Labels in rounded boxes of the node's colour: a long name never runs out of a fixed circle.
        nx.draw_networkx_edges(g, pos, ax=ax, node_size=2600, arrowsize=12, edge_color="#555")
        for n, color in zip(g, colors):
            ax.annotate(
                str(n).replace(SPEND_PREFIX, "").replace("_", "\n"),
                pos[n],
                ha="center",
                va="center",
                fontsize=8,
                color="white",
                bbox={"boxstyle": "round,pad=0.4", "fc": color, "ec": "none"},
            )
        xs, ys = zip(*pos.values())
        ax.set_xlim(min(xs) - 0.15, max(xs) + 0.15)
        ax.set_ylim(min(ys) - 0.4, max(ys) + 0.4)
        ax.set_axis_off()
        return fig, ax


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append(
            {
                k: (
                    None
                    if isinstance(v, float) and not np.isfinite(v)
                    else (v.item() if hasattr(v, "item") else v)
                )
                for k, v in rec.items()
            }
        )
    return out


def analysis_frame(
    panel: Panel, channels: Sequence[str], covariates: Sequence[str], freq: str = "W"
) -> pd.DataFrame:
    """Geo x week table per unit of market size, for the graph's regressions.

    Outcome and spend are summed over the week and divided by the geo's size
    (its mean outcome over the mean of all geos) so markets of different size
    share one slope; a covariate is divided too when its geo means track size
    (correlation above 0.8), and averaged otherwise (an index such as a price).
    """
    df = panel.data
    size = df.groupby(panel.geo_col)[panel.y].mean()
    size = size / size.mean()
    week = (
        df[panel.date_col].dt.to_period(freq).dt.start_time
        if panel.freq == "D"
        else df[panel.date_col]
    )
    key = [df[panel.geo_col], week.rename("period")]
    sums = [panel.y, *[SPEND_PREFIX + c for c in channels]]
    out = df.groupby(key)[sums].sum()
    for c in covariates:
        gm = df.groupby(panel.geo_col)[c].mean()
        scales = (
            len(gm) > 2 and gm.std() > 0 and np.corrcoef(gm.reindex(size.index), size)[0, 1] > 0.8
        )
        out[c] = df.groupby(key)[c].sum() if scales else df.groupby(key)[c].mean()
        if not scales:
            continue
        out[c] = out[c] / size.reindex(out.index.get_level_values(0)).to_numpy()
    geo_size = size.reindex(out.index.get_level_values(0)).to_numpy()
    for c in sums:
        out[c] = out[c] / geo_size
    return out.reset_index(drop=True).astype(float)


def analyse(
    panel: Panel,
    graph: nx.DiGraph | None = None,
    *,
    channels: Sequence[str] | None = None,
    experimental: Mapping[str, tuple[float, float, float]] | None = None,
    refute: bool = True,
    num_simulations: int = 30,
    confidence: float = 0.9,
    seed: int = 0,
) -> GraphAnalysis:
    """Identify, estimate and refute each channel's total effect with DoWhy.

    Parameters
    ----------
    panel : Panel
    graph : DiGraph or None, default=None
        The default marketing graph when None; channel nodes may be named
        ``ctv`` or ``spend_ctv``.
    channels : sequence of str or None
        All the panel's channels by default.
    experimental : mapping channel -> (estimate, lo, hi), optional
        Outcome per unit spend measured by experiments, for the side-by-side table.
    refute : bool, default=True
        Run DoWhy's placebo-treatment (permute), random-common-cause and
        data-subset refuters.
    num_simulations : int, default=30
    confidence : float, default=0.9
    seed : int, default=0

    Returns
    -------
    GraphAnalysis

    Notes
    -----
    DoWhy 0.14's default placebo ("Random Data") draws the placebo from a normal
    with standard deviation 0, a constant column: every placebo estimate is 0,
    their spread is 0 and the p-value is NaN. We use ``placebo_type="permute"``
    (the treatment shuffled across rows) and also report a permutation p-value
    (share of placebo estimates at least as large as the estimate in absolute
    value); any NaN p-value left is reported as such in the table's notes.
    """
    from dowhy import CausalModel

    channels = list(channels) if channels is not None else panel.channels
    graph = normalise(
        graph if graph is not None else default_graph(channels, panel.y), channels, panel.y
    )
    covariates = [c for c in panel.covariates if c in graph]
    data = analysis_frame(panel, channels, covariates)
    observed = set(data.columns)
    gml = to_gml(graph)
    rows, refs, notes = [], [], []
    from scipy import stats

    zq = stats.norm.ppf(0.5 + confidence / 2)
    spend_cols = [SPEND_PREFIX + c for c in channels]
    X = np.column_stack([np.ones(len(data)), data[spend_cols].to_numpy()])
    naive = np.linalg.lstsq(X, data[panel.y].to_numpy(), rcond=None)[0][1:]
    with _quiet("dowhy"):
        for i, ch in enumerate(channels):
            t = SPEND_PREFIX + ch
            if t not in graph:
                notes.append(f"channel '{ch}' is not in the graph; not estimated")
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = CausalModel(data=data, treatment=t, outcome=panel.y, graph=gml)
                ident = model.identify_effect(proceed_when_unidentifiable=False)
                try:
                    adj = sorted(ident.get_backdoor_variables() or [])
                except TypeError:  # DoWhy found no backdoor estimand
                    adj = None
                if adj is None or not nx.has_path(graph, t, panel.y):
                    notes.append(
                        f"channel '{ch}': no path to {panel.y} or no backdoor adjustment set in the graph; not estimated"
                    )
                    continue
                # effect_modifiers=[]: left None, DoWhy takes every other parent of the outcome as an
                # effect modifier, fits interactions and slows down a hundredfold; we want the average slope.
                est = model.estimate_effect(
                    ident,
                    method_name="backdoor.linear_regression",
                    confidence_intervals=False,
                    test_significance=False,
                    effect_modifiers=[],
                )
                value = float(est.value)
                se = _ols_se(data, t, panel.y, adj)
                row = {
                    "channel": ch,
                    "adjustment_set": ", ".join(adj),
                    "naive": float(naive[i]),
                    "adjusted": value,
                    "adjusted_lo": value - zq * se,
                    "adjusted_hi": value + zq * se,
                }
                if experimental and ch in experimental:
                    e, lo, hi = experimental[ch]
                    row.update(experimental=e, experimental_lo=lo, experimental_hi=hi)
                else:
                    row.update(experimental=np.nan, experimental_lo=np.nan, experimental_hi=np.nan)
                rows.append(row)
                if refute:
                    refs += _refute(
                        model, ident, est, ch, num_simulations, seed, data, t, panel.y, adj, notes
                    )
    table = pd.DataFrame(rows).set_index("channel")
    table.attrs.update(observed=observed, outcome=panel.y)
    return GraphAnalysis(table, pd.DataFrame(refs), graph, notes)


@contextmanager
def _quiet(logger: str):
    """Drop a library's log records below ERROR while DoWhy runs, and only its own."""
    log = logging.getLogger(logger)

    def error_or_worse(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    log.addFilter(error_or_worse)
    try:
        yield
    finally:
        log.removeFilter(error_or_worse)


def _ols_se(data: pd.DataFrame, t: str, y: str, adj: list[str]) -> float:
    X = np.column_stack([np.ones(len(data)), data[[t, *adj]].to_numpy()])
    coef, *_ = np.linalg.lstsq(X, data[y].to_numpy(), rcond=None)
    r = data[y].to_numpy() - X @ coef
    s2 = r @ r / max(len(r) - X.shape[1], 1)
    return float(np.sqrt(s2 * np.linalg.pinv(X.T @ X)[1, 1]))


def _refute(model, ident, est, ch, n, seed, data, t, y, adj, notes) -> list[dict]:
    out = []
    specs = [
        ("placebo treatment", "placebo_treatment_refuter", {"placebo_type": "permute"}),
        ("random common cause", "random_common_cause", {}),
        ("data subset (80%)", "data_subset_refuter", {"subset_fraction": 0.8}),
    ]
    for label, method, kw in specs:
        res = model.refute_estimate(
            ident, est, method_name=method, num_simulations=n, random_seed=seed, **kw
        )
        p = float(res.refutation_result["p_value"]) if res.refutation_result else np.nan
        row = {
            "channel": ch,
            "refuter": label,
            "estimate": float(res.estimated_effect),
            "new_effect": float(res.new_effect),
            "p_value": p,
        }
        if method == "placebo_treatment_refuter":
            row["permutation_p"] = _permutation_p(
                data, t, y, adj, n, seed, float(res.estimated_effect)
            )
            row["passes"] = bool(
                abs(row["new_effect"]) < 0.1 * abs(row["estimate"]) + 1e-12
                and row["permutation_p"] <= 0.1
            )
        else:
            row["permutation_p"] = np.nan
            row["passes"] = bool(np.isfinite(p) and p > 0.05)
        if not np.isfinite(p):
            notes.append(f"{ch}: DoWhy's {label} refuter returned a NaN p-value")
        out.append(row)
    return out


def _permutation_p(data, t, y, adj, n, seed, estimate) -> float:
    """Share of placebo (permuted-treatment) estimates at least as extreme as the estimate."""
    rng = np.random.default_rng(seed)
    Z = (
        np.column_stack([np.ones(len(data)), data[adj].to_numpy()])
        if adj
        else np.ones((len(data), 1))
    )
    yv = data[y].to_numpy()
    tv = data[t].to_numpy()
    hits = 0
    for _ in range(n):
        X = np.column_stack([rng.permutation(tv), Z])
        b = np.linalg.lstsq(X, yv, rcond=None)[0][0]
        hits += abs(b) >= abs(estimate)
    return (1 + hits) / (1 + n)
