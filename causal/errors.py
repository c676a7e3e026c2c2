"""Exceptions and warnings shared by every liftlab package.

Every user-facing error subclasses a built-in as well, so a caller catching
``ValueError`` also catches :class:`DataError` (as scikit-learn's
``NotFittedError`` does with ``ValueError``). The command line turns any
:class:`LiftlabError` into one line ``error: ...`` and exit status 2.
"""

from __future__ import annotations


class LiftlabError(Exception):
    """Base class of errors caused by the user's input, not by liftlab."""


class DataError(LiftlabError, ValueError):
    """The data are unusable as given: a missing row, a NaN, an unknown geo or date."""


class ConfigError(LiftlabError, ValueError):
    """Options that contradict each other or that no design, fit or plan can meet."""


class InfeasibleError(ConfigError):
    """An optimisation problem has no solution under the constraints given."""


class NotFittedError(LiftlabError, ValueError, AttributeError):
    """A fitted attribute or result was asked for before ``fit`` was called."""


class LiftlabWarning(UserWarning):
    """Base class of liftlab's warnings: a doubtful assumption, not an error."""


class WeakFitWarning(LiftlabWarning):
    """The pre-period fit of a counterfactual is poor; the readout may be biased."""


class FilledRowsWarning(LiftlabWarning):
    """Absent panel rows were filled with zeros because the user asked for it."""
