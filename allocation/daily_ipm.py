r"""A structured primal-dual interior-point method for the daily plan.

The daily plan of :mod:`allocation.daily_plan` is, line by line, a small convex
problem (28 days of spend, the adstock recursion, floors and ceilings, the
pairwise rolling-window guardrail) tied to the other lines only by the
budget row. A general conic solver factorises all of it at once: at 190
markets x 8 channels x 28 days that is a sparse system of ~0.6 million rows per
iteration, most of them guardrail rows. Here the Newton system is solved the
way its structure allows: one dense ``T x T`` block per line (the objective's
Hessian through the adstock map, plus the barrier terms of the line's rows),
factorised for all lines at once, and the budget row by a scalar Schur
complement. The cost per iteration is ``O(lines T^3)`` in batched dense
algebra.

Minimised (in scaled units; spend :math:`x_i = r_i \tilde x_i`):

.. math::

    \min_x\; -\sum_{i,t} q_{it}\, g_i(z_{it}) \quad
    \text{s.t.}\; z_i = K_i x_i + z^0_i,\;
    G x_i \le h_i,\;
    \textstyle\sum_{i,t} r_i \tilde x_{it} = B \;(\text{or} \le B),

with :math:`K_i` the (lower-triangular) normalised geometric adstock map,
:math:`g_i` one of the concave forms of :mod:`allocation.problem`
(``exp``, ``log``, ``hill`` with shape <= 1, ``power`` with exponent <= 1,
``linear``), and the rows of :math:`G` the floors, ceilings and the guardrail
pairs :math:`\pm(x_t - x_{t-k}) \le b`, :math:`k = 1..6`.

The method is Mehrotra's predictor-corrector (Mehrotra 1992, SIAM J. Optim.
2(4)) for a smooth convex objective under linear constraints (Nocedal and
Wright 2006, *Numerical Optimization*, ch. 19; Vandenberghe 2010, *The CVXOPT
linear and quadratic cone program solvers*, for the block elimination). It
starts strictly inside every line's rows (constant spend per line), so spend
stays inside its floors, ceilings and guardrail at every iterate, and the
curves are only ever evaluated where they are defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from causal import response as R

SUPPORTED = ("exp", "log", "hill", "power", "linear")


@dataclass
class DailySolution:
    """What :func:`solve_daily` found.

    Attributes
    ----------
    spend : ndarray (lines, days)
    status : str
        ``"optimal"`` or ``"max_iterations"``.
    iterations : int
    budget_dual : float
        Extra outcome per extra unit of budget at the optimum (objective units).
    guardrail_dual : ndarray (lines,)
        Largest multiplier of a line's guardrail rows (objective units per unit of spend).
    gap : float
        Duality gap (complementarity) relative to the objective at the end.
    """

    spend: np.ndarray
    status: str
    iterations: int
    budget_dual: float
    guardrail_dual: np.ndarray
    gap: float
    market_dual: np.ndarray | None = None


def _row_pattern(days: int, window: int | None) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """The rows every line shares: floors, ceilings and (with a guardrail ``window``) the pairs of
    days less than ``window`` apart.

    Returns the dense row matrix ``(R, days)``, each row's kind (0 floor, 1 ceiling, 2 guardrail)
    and the rows' flattened outer products ``(R, days * days)``.
    """
    rows, kind = [], []
    eye = np.eye(days)
    for t in range(days):
        rows.append(-eye[t])
        kind.append(0)
    for t in range(days):
        rows.append(eye[t])
        kind.append(1)
    if window is not None:
        for k in range(1, min(window, days)):
            for t in range(k, days):
                d = eye[t] - eye[t - k]
                rows += [d, -d]
                kind += [2, 2]
    G = np.array(rows)
    # Flattened outer products g_r g_r^T: G^T diag(d) G for all lines as one sparse product.
    outer = sp.csr_matrix(np.einsum("ri,rj->rij", G, G).reshape(len(G), days * days))
    return G, np.array(kind), outer


def curve_terms(
    form: np.ndarray, shape: np.ndarray, z: np.ndarray, tangent: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g, g' and g'' of each line's unit curve (:mod:`causal.response`) at z (lines x days); z > 0 inside.

    A line with ``tangent[i] > 0`` uses the concave envelope of its curve instead: below the
    tangent point the tangent line (:func:`causal.response.envelope_tangent`), the curve above.
    """
    g, g1, g2 = np.empty_like(z), np.empty_like(z), np.empty_like(z)
    for code, name in enumerate(SUPPORTED):
        rows = form == code
        if rows.any():
            g[rows], g1[rows], g2[rows] = R.unit_terms(name, z[rows], shape[rows][:, None])
    if tangent is not None and (tangent > 0).any():
        rows = np.flatnonzero(tangent > 0)
        zt = tangent[rows][:, None]
        gt, g1t, _ = R.unit_terms("hill", zt, shape[rows][:, None])
        below = z[rows] < zt
        g[rows] = np.where(below, gt + g1t * (z[rows] - zt), g[rows])
        g1[rows] = np.where(below, g1t, g1[rows])
        g2[rows] = np.where(below, 0.0, g2[rows])
    return g, g1, g2


def solve_daily(**problem) -> DailySolution:
    """Maximise ``sum weights * g(adstock / scale)`` over daily spend; see :func:`_solve_daily`."""
    # Batched 28 x 28 algebra gains nothing from BLAS threads and loses to their contention
    # (measured: 2.7 s single-threaded vs 5.9 s CPU with two threads on a busy 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _solve_daily(**problem)


@dataclass
class _Point:
    """A primal-dual iterate: spend, row slacks and multipliers, budget multiplier (and slack if ``le``)."""

    x: np.ndarray
    s: np.ndarray
    z: np.ndarray
    y: float
    sB: float
    u: np.ndarray | None = None  # market rows' slacks (markets x days)
    w: np.ndarray | None = None  # and multipliers


class _Model:
    """The problem's fixed data in scaled units, and the objective's value, gradient and Hessian."""

    def __init__(
        self,
        forms,
        shapes,
        weights,
        scale,
        decay,
        start_adstock,
        lower,
        upper,
        band,
        window,
        budget,
        budget_mode,
        reference,
        market=None,
        market_caps=None,
        tangent=None,
    ):
        n, T = weights.shape
        self.n, self.T = n, T
        r = self.r = np.asarray(reference, dtype=float)
        decay = np.asarray(decay, dtype=float)
        self.form = np.array([SUPPORTED.index(f) for f in forms])
        self.shape = np.asarray(shapes, dtype=float)
        self.G, self.kind, self.outer = _row_pattern(T, None if band is None else window)
        # Adstock in the curve's units from scaled spend: z = K x + z0 (K lower-triangular per line).
        steps = np.arange(T)
        lag = steps[:, None] - steps[None, :]
        powers = np.where(lag >= 0, decay[:, None, None] ** np.maximum(lag, 0)[None], 0.0)
        self.K = powers * ((1 - decay) * r / scale)[:, None, None]
        self.Kt = np.ascontiguousarray(self.K.transpose(0, 2, 1))
        self.z0 = decay[:, None] ** (steps + 1)[None, :] * (start_adstock / scale)[:, None]
        self.lo, self.hi = lower / r[:, None], upper / r[:, None]
        h = np.empty((n, len(self.G)))
        h[:, self.kind == 0] = -self.lo
        h[:, self.kind == 1] = self.hi
        if band is not None:
            h[:, self.kind == 2] = (band / r)[:, None]
        self.active = np.isfinite(h)  # rows of infinite ceilings take no part
        self.act = self.active.astype(float)
        self.h = np.where(self.active, h, 0.0)
        self.a = np.repeat(r[:, None], T, axis=1)  # the budget row in scaled units
        self.budget, self.le = float(budget), budget_mode == "le"
        self.m = int(self.active.sum()) + (1 if self.le else 0)
        self.q = np.asarray(weights, dtype=float)
        self.obj_scale = 1.0
        self.tangent = None if tangent is None else np.asarray(tangent, dtype=float)
        # Market rows: sum over a market's lines of r_i x_it <= cap_m, each day (a sparse markets x lines map).
        self.k = 0 if market_caps is None else len(market_caps)
        if self.k:
            mk = np.asarray(market, dtype=int)
            on = np.flatnonzero(mk >= 0)
            self.Mr = sp.csr_matrix((r[on], (mk[on], on)), shape=(self.k, n))
            self.Mr2 = sp.csr_matrix((r[on] ** 2, (mk[on], on)), shape=(self.k, n))
            self.MrT = self.Mr.T.tocsr()
            self.cap = np.asarray(market_caps, dtype=float)
            self.m += self.k * T

    def start(self) -> _Point:
        """Constant spend per line strictly inside its floors and ceilings (a constant meets every
        guardrail pair with the whole band to spare), multipliers on the central path."""
        floor, ceil = self.lo.max(axis=1), self.hi.min(axis=1)
        target = self.budget / self.r.sum() / self.T
        x = np.where(
            np.isfinite(ceil),
            0.5 * (floor + ceil),
            np.maximum(target, floor + np.maximum(0.5, np.abs(floor))),
        )
        if self.k:
            # Move each budgeted market's lines toward their floors until the market sits halfway
            # between its floors and its cap: strictly inside the market rows too.
            f_m, x_m = self.Mr @ floor, self.Mr @ x
            if (f_m >= self.cap).any():
                raise ValueError("no strictly feasible start: a market's floors meet its budget")
            theta = np.minimum(1.0, 0.5 * (self.cap - f_m) / np.maximum(x_m - f_m, 1e-300))
            th = np.ones(self.n)
            on = self.Mr.tocoo()
            th[on.col] = theta[on.row]
            x = floor + th * (x - floor)
        x = np.repeat(x[:, None], self.T, axis=1)
        # Objective scaled so that its average gradient entry is one.
        _, grad, _ = self.terms(x)
        self.obj_scale = max(float(np.abs(grad).mean()), 1e-300)
        self.q = self.q / self.obj_scale
        s = np.where(self.active, self.h - x @ self.G.T, 1.0)
        if (s[self.active] <= 0).any():
            raise ValueError(
                "no strictly feasible start: a line's floor meets its ceiling or guardrail box"
            )
        z = self.act / s
        sB = max(self.budget - float((self.a * x).sum()), 1e-3 * self.budget) if self.le else 0.0
        u = w = None
        if self.k:
            u = self.cap[:, None] - self.Mr @ x
            w = 1.0 / u
        return _Point(x, s, z, 1.0 / sB if self.le else 0.0, sB, u, w)

    def terms(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Objective (minimised: minus the outcome), its gradient and its per-line Hessian blocks."""
        # x >= floor >= 0 at every iterate; the clip only absorbs rounding in the last digit.
        z = np.maximum((self.K @ x[:, :, None])[..., 0] + self.z0, 1e-300)
        g, g1, g2 = curve_terms(self.form, self.shape, z, self.tangent)
        grad = -(self.Kt @ (self.q * g1)[:, :, None])[..., 0]
        hess = self.Kt @ (np.maximum(-self.q * g2, 0.0)[:, :, None] * self.K)
        return -float((self.q * g).sum()), grad, hess


class _Newton:
    """The linearised KKT system at one iterate, with the rows eliminated into per-line blocks.

    Unknowns ``(dx, ds, dz, dy, dsB)``; equations::

        hess dx + G'dz + a dy = b_d        G dx + ds = b_p        Z ds + S dz = b_c
        a'dx (+ dsB) = b_B                 (le:  y dsB + sB dy = b_cB)
    """

    def __init__(self, model: _Model, p: _Point, hess: np.ndarray):
        self.m, self.p, self.hess = model, p, hess
        self.D = p.z / p.s * model.act
        n, T = model.n, model.T
        self.H_inv = np.linalg.inv(hess + (model.outer.T @ self.D.T).T.reshape(n, T, T))
        if model.k:
            # Woodbury for the market rows V E V': one T x T system per market,
            # C_m = diag(1 / E_m) + sum over the market's lines of r_i^2 H_i^-1.
            self.E = p.w / p.u
            C = (model.Mr2 @ self.H_inv.reshape(n, T * T)).reshape(model.k, T, T)
            C[:, np.arange(T), np.arange(T)] += 1.0 / self.E
            self.C_inv = np.linalg.inv(C)
        self.dB = p.y / p.sB if model.le else 0.0
        self.Ha = self._P(model.a)
        self.aHa = float((model.a * self.Ha).sum())

    def _P(self, v):
        """(H + V E V')^-1 v, with H the per-line blocks."""
        h = (self.H_inv @ v[:, :, None])[..., 0]
        if not self.m.k:
            return h
        c = (self.C_inv @ (self.m.Mr @ h)[:, :, None])[..., 0]
        return h - (self.H_inv @ (self.m.MrT @ c)[:, :, None])[..., 0]

    def _solve(self, b):
        m, p, D = self.m, self.p, self.D
        bd, bp, bc, bB, bcB, bpm, bcm = b
        rhs = bd + ((D * bp - bc / p.s) * m.act) @ m.G
        if m.k:
            rhs = rhs + m.MrT @ (self.E * bpm - bcm / p.u)
        if m.le:
            rhs = rhs + m.a * (self.dB * bB - bcB / p.sB)
        v = self._P(rhs)
        av = float((m.a * v).sum())
        if m.le:  # Sherman-Morrison for the budget row's barrier term dB a a'
            dx = v - self.Ha * (self.dB * av / (1 + self.dB * self.aHa))
        else:  # Schur complement of the budget equality
            dy = (av - bB) / self.aHa
            dx = v - self.Ha * dy
        Gdx = dx @ m.G.T
        ds = (bp - Gdx) * m.act
        dz = (D * (Gdx - bp) + bc / p.s) * m.act
        dsB = 0.0
        if m.le:
            adx = float((m.a * dx).sum())
            dsB = bB - adx
            dy = self.dB * (adx - bB) + bcB / p.sB
        du = dw = 0.0
        if m.k:
            Mdx = m.Mr @ dx
            du = bpm - Mdx
            dw = self.E * (Mdx - bpm) + bcm / p.u
        return dx, ds, dz, dy, dsB, du, dw

    def _apply(self, d):
        m, p = self.m, self.p
        dx, ds, dz, dy, dsB, du, dw = d
        first = (self.hess @ dx[:, :, None])[..., 0] + dz @ m.G + m.a * dy
        if m.k:
            first = first + m.MrT @ dw
        return (
            first,
            (dx @ m.G.T + ds) * m.act,
            (p.z * ds + p.s * dz) * m.act,
            float((m.a * dx).sum()) + dsB,
            p.y * dsB + p.sB * dy if m.le else 0.0,
            (m.Mr @ dx + du) if m.k else 0.0,
            (p.w * du + p.u * dw) if m.k else 0.0,
        )

    def solve(self, b, refinements: int):
        # Iterative refinement on the full system: the eliminated one is ill-conditioned near the
        # optimum (Z/S spans many decades), and the dual residual would stall without it.
        d = self._solve(b)
        for _ in range(refinements):
            e = tuple(bi - ai for bi, ai in zip(b, self._apply(d)))
            d = tuple(di + ci for di, ci in zip(d, self._solve(e)))
        return d


def _max_step(m: _Model, p: _Point, d) -> float:
    """Largest step keeping slacks and multipliers of the rows (and the budget row if ``le``) >= 0."""
    _, ds, dz, dy, dsB, du, dw = d
    ratios = [1.0]
    for v, dv in ((p.s, ds), (p.z, dz)):
        neg = m.active & (dv < 0)
        if neg.any():
            ratios.append(float((-v[neg] / dv[neg]).min()))
    if m.k:
        for v, dv in ((p.u, du), (p.w, dw)):
            neg = dv < 0
            if neg.any():
                ratios.append(float((-v[neg] / dv[neg]).min()))
    if m.le:
        ratios += [-v / dv for v, dv in ((p.sB, dsB), (p.y, dy)) if dv < 0]
    return min(ratios)


def _solve_daily(
    *,
    forms: list[str],
    shapes: np.ndarray,
    weights: np.ndarray,
    scale: np.ndarray,
    decay: np.ndarray,
    start_adstock: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    band: np.ndarray | None,
    window: int,
    budget: float,
    budget_mode: str,
    reference: np.ndarray,
    market: np.ndarray | None = None,
    market_caps: np.ndarray | None = None,
    tangent: np.ndarray | None = None,
    tol: float = 1e-9,
    dual_tol: float = 1e-6,
    refinements: int = 1,
    max_iterations: int = 200,
) -> DailySolution:
    """Maximise ``sum weights * g(adstock / scale)`` over daily spend; see the module docstring.

    Parameters
    ----------
    forms : list of str
        Each line's form (:data:`SUPPORTED`); ``hill`` and ``power`` need ``shapes`` <= 1.
    shapes : array (lines,)
        Hill shape or power exponent (ignored by the other forms).
    weights : array (lines, days)
        ``coef * demand multiplier``, >= 0.
    scale, decay, start_adstock : arrays (lines,)
        The curve's spend scale, the geometric adstock decay, the adstock before day 0.
    lower, upper : arrays (lines, days)
        Spend bounds per line and day (``upper`` may be ``inf``); some constant spend must
        lie strictly between them.
    band : array (lines,) or None
        Guardrail: most change of a line's spend between any two days less than ``window`` apart.
    window : int
        The guardrail's window in days.
    budget : float
    budget_mode : {"eq", "le"}
    reference : array (lines,)
        A typical daily spend per line (> 0), to scale the variables.
    market : int array (lines,), optional
        Each line's budgeted market (index into ``market_caps``), -1 for none.
    market_caps : array (markets,), optional
        Most spend per market and day. These rows couple a market's lines day by day; they
        enter the Newton system by the Woodbury identity, one ``T x T`` system per market.
    tangent : array (lines,), optional
        Lines with a positive entry are S-shaped Hill curves to be replaced by their concave
        envelope (the tangent line below this unit-scale tangent point).
    tol : float
        Stop when the duality gap (complementarity) is below ``tol`` times the objective ...
    dual_tol : float
        ... and the dual residual below ``dual_tol`` times the largest gradient entry (the
        objective is scaled so that its average gradient entry is one), as interior-point
        solvers such as Clarabel and CVXOPT stop.
    refinements : int
        Iterative-refinement steps on each Newton system.
    """
    m = _Model(
        forms,
        shapes,
        weights,
        scale,
        decay,
        start_adstock,
        lower,
        upper,
        band,
        window,
        budget,
        budget_mode,
        reference,
        market,
        market_caps,
        tangent,
    )
    p = m.start()
    status, it = "max_iterations", 0
    best = (np.inf, p, np.inf, 0)
    for it in range(1, max_iterations + 1):
        F, grad, hess = m.terms(p.x)
        r_d = grad + p.z @ m.G + m.a * p.y
        r_p = (p.x @ m.G.T + p.s - m.h) * m.act
        r_B = float((m.a * p.x).sum()) + p.sB - m.budget
        complementarity = float((p.s * p.z * m.act).sum()) + p.sB * p.y
        r_pm = rc_m = 0.0
        if m.k:
            r_d = r_d + m.MrT @ p.w
            r_pm = m.Mr @ p.x + p.u - m.cap[:, None]
            rc_m = p.u * p.w
            complementarity += float(rc_m.sum())
        mu = complementarity / m.m
        gap = complementarity / max(1.0, abs(F))
        dual_res = float(np.abs(r_d).max()) / (1.0 + float(np.abs(grad).max()))
        feasible = abs(r_B) <= 1e-10 * max(1.0, m.budget)
        # Near double precision's limit a last step can lose dual accuracy: keep the best iterate.
        score = max(gap / tol, dual_res / dual_tol) if feasible else np.inf
        if score < best[0]:
            best = (score, p, gap, it)
        if score <= 1.0:
            status = "optimal"
            break
        if (
            float(p.s[m.active].min()) < 1e-14
            or (m.le and p.sB < 1e-14 * max(1.0, m.budget))
            or (m.k and float(p.u.min()) < 1e-14 * max(1.0, float(m.cap.max())))
        ):
            status = "optimal" if best[0] <= 100 else "stalled"
            break

        newton = _Newton(m, p, hess)
        rc = p.s * p.z * m.act
        rcB = p.sB * p.y if m.le else 0.0
        b = [-r_d, -r_p, -rc, -r_B, -rcB, -r_pm, -rc_m]
        d = newton.solve(b, refinements)  # affine (predictor) direction
        alpha = _max_step(m, p, d)
        _, ds, dz, dy, dsB, du, dw = d
        mu_aff = (
            float(((p.s + alpha * ds) * (p.z + alpha * dz) * m.act).sum())
            + ((p.sB + alpha * dsB) * (p.y + alpha * dy) if m.le else 0.0)
            + (float(((p.u + alpha * du) * (p.w + alpha * dw)).sum()) if m.k else 0.0)
        ) / m.m
        sigma = min(1.0, (mu_aff / mu) ** 3)
        b[2] = -(rc + (ds * dz - sigma * mu) * m.act)  # Mehrotra's corrector and centring
        if m.le:
            b[4] = -(rcB + dsB * dy - sigma * mu)
        if m.k:
            b[6] = -(rc_m + du * dw - sigma * mu)
        d = newton.solve(b, refinements)
        alpha = min(1.0, 0.99 * _max_step(m, p, d))
        dx, ds, dz, dy, dsB, du, dw = d
        p = _Point(
            p.x + alpha * dx,
            np.where(m.active, p.s + alpha * ds, 1.0),
            p.z + alpha * dz * m.act,
            p.y + alpha * dy,
            p.sB + alpha * dsB if m.le else 0.0,
            p.u + alpha * du if m.k else None,
            p.w + alpha * dw if m.k else None,
        )

    _, p, gap, it = best
    if status == "max_iterations" and best[0] <= 100:
        status = "optimal"
    guard = np.zeros(m.n)
    if band is not None:
        guard = (p.z[:, m.kind == 2] * m.obj_scale / m.r[:, None]).max(axis=1)
    market_dual = (p.w * m.obj_scale).max(axis=1) if m.k else None
    return DailySolution(
        spend=p.x * m.r[:, None],
        status=status,
        iterations=it,
        budget_dual=float(abs(p.y) * m.obj_scale),
        guardrail_dual=guard,
        gap=float(gap),
        market_dual=market_dual,
    )
