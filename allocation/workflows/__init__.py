"""Workflows: the orchestration behind each ``liftlab`` command, as library functions.

Each function takes parsed inputs, calls the library's pieces in order and
returns a result object; it writes no file and prints nothing. The command
line (``allocation/cli``) parses options, calls one of these, renders reports
and prints: the package rule causal <- experiments <- allocation <- CLI holds.
"""

from allocation.workflows.calibrate import CalibrationRun, calibrate_curves, read_clusters
from allocation.workflows.planning import PlanRun, commit_plan, plan_budget, replan_budget
from allocation.workflows.proposals import propose_and_register, window_end

__all__ = [
    "CalibrationRun",
    "PlanRun",
    "calibrate_curves",
    "commit_plan",
    "plan_budget",
    "propose_and_register",
    "read_clusters",
    "replan_budget",
    "window_end",
]
