"""Running the design's simulations: locally with joblib, or on a Dask cluster.

Each task simulates one candidate design's readout on historical windows
(:func:`experiments.power.candidate_power`, or the rejection rate with no
effect). Tasks run one BLAS thread each, in task order, with a progress bar
when asked; the result does not depend on where they ran (every computation is
deterministic given the seed).
"""

from __future__ import annotations

from collections.abc import Callable

from causal.errors import ConfigError
from experiments.power import candidate_power, null_rejection_rate

__all__ = ["null_task", "power_task", "run_tasks"]


def run_tasks(
    tasks: list[tuple],
    fn: Callable,
    *,
    n_jobs: int,
    scheduler: str | None,
    progress: bool,
    desc: str,
):
    """Run ``fn(*task)`` for every task locally (joblib) or on a Dask cluster; results in task order."""
    from joblib import Parallel, delayed, parallel_config
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=False)
    try:
        if scheduler is not None:
            from distributed import Client

            try:
                client = Client(scheduler, timeout="10s", set_as_default=False)
            except OSError as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at '{scheduler}' ({exc})"
                ) from exc
            try:
                with client.as_current(), parallel_config(backend="dask"):
                    gen = Parallel(n_jobs=-1, return_as="generator")(delayed(fn)(*t) for t in tasks)
                    out = []
                    for r in gen:
                        out.append(r)
                        bar.update()
            finally:
                client.close()
            return out
        if n_jobs == 1:
            out = []
            for t in tasks:
                out.append(fn(*t))
                bar.update()
            return out
        out = []
        for r in Parallel(n_jobs=n_jobs, return_as="generator", batch_size="auto")(
            delayed(fn)(*t) for t in tasks
        ):
            out.append(r)
            bar.update()
        return out
    finally:
        bar.close()


def power_task(
    Y, treated, control, duration, starts, effects, estimator, alpha, power_target, names, seed
):
    from threadpoolctl import threadpool_limits

    # The work is many small matrix operations: multithreaded BLAS only adds contention
    # (ten times slower on a busy 2-core machine); parallelism comes from the tasks.
    with threadpool_limits(limits=1):
        return _power_task_inner(
            Y,
            treated,
            control,
            duration,
            starts,
            effects,
            estimator,
            alpha,
            power_target,
            names,
            seed,
        )


def null_task(Y, treated, control, duration, starts, estimator, alpha, seed):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return null_rejection_rate(
            Y, treated, control, duration, starts, estimator=estimator, alpha=alpha, seed=seed
        )


def _power_task_inner(
    Y, treated, control, duration, starts, effects, estimator, alpha, power_target, names, seed
):
    return candidate_power(
        Y,
        treated,
        control,
        duration,
        starts,
        effects,
        estimator=estimator,
        alpha=alpha,
        power_target=power_target,
        names=names,
        seed=seed,
    )
