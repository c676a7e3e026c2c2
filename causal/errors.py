"""Exceptions and warnings shared by every liftlab package.

Every user-facing error subclasses a built-in as well, so a caller catching
``ValueError`` also catches :class:`DataError` (as scikit-learn's
``NotFittedError`` does with ``ValueError``). The command line turns any
:class:`LiftlabError` into one line ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import re


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


class IncompleteColumnWarning(LiftlabWarning):
    """A numeric column no command asked for has empty cells: kept, but not offered as a covariate."""


# Up to the LAST "@" of the token: a password holding a raw "@" (malformed, but typed by users) is
# masked whole, not up to its own "@".
_USERINFO = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<secret>\S*)@")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<secret>[^&\s]*)", re.IGNORECASE
)


def mask_url(url: str | os.PathLike | None) -> str:
    """``url`` (or any text holding URLs) with every password replaced by ``***``.

    The one masking rule for messages, reports and stored files (re-exported
    by :mod:`experiments.store`). It works on URLs SQLAlchemy cannot parse too
    (a non-numeric port, an unknown dialect), because those are exactly the
    ones that end up in error messages. It lives here, in the lowest package,
    so that every package can use it.

    Examples
    --------
    >>> mask_url("postgresql+psycopg://ana:s3cret@db.example:5432/liftlab")
    'postgresql+psycopg://ana:***@db.example:5432/liftlab'
    >>> mask_url("postgresql://ana:s3cret@host:port/db")
    'postgresql://ana:***@host:port/db'
    >>> mask_url("sqlite:////tmp/liftlab.db")
    'sqlite:////tmp/liftlab.db'
    >>> mask_url("postgresql://ana:pa@ss@host/db")
    'postgresql://ana:***@host/db'
    """
    if url is None:
        return ""
    text = str(url)
    text = _USERINFO.sub(lambda m: m.group("head") + "***@", text)
    return _QUERY_SECRET.sub(lambda m: m.group("head") + "***", text)


def raw_at_in_userinfo(url: str) -> bool:
    """Whether a URL's user or password holds an unencoded ``@`` (more than one ``@`` before its host).

    Such a URL is parsed with part of the password as the host, which a driver's message then
    prints; it is refused instead (percent-encode the ``@`` as ``%40``).

    >>> raw_at_in_userinfo("postgresql://ana:pa@ss@host/db"), raw_at_in_userinfo("postgresql://ana:pa%40ss@host/db")
    (True, False)
    """
    _, sep, rest = str(url).partition("://")
    return bool(sep) and rest.split("/", 1)[0].count("@") > 1
