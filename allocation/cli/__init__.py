"""The ``liftlab`` command line and its HTML reports: a thin layer over the library.

Nothing in ``causal``, ``experiments`` or ``allocation`` imports this package.
It lives under ``allocation/`` only because the repository's top level is
fixed; ``allocation`` is the one package allowed to depend on both others.
"""
