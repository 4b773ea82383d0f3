"""One BLAS thread for many small matrix products.

The forecasters' networks and statsmodels' fits multiply small matrices, thousands of times: on
one thread each product is fastest, and several threads only wait for each other. Worse, SciPy
(under statsmodels) brings its own OpenBLAS, and two BLAS thread pools in one process fight over
the cores: small GEMMs then ran 3-50x slower on a two-core machine. Inside `one_blas_thread()`
every BLAS pool of the process runs one thread. threadpoolctl is optional: without it, nothing
changes (only slower).
"""

from __future__ import annotations

from contextlib import nullcontext

__all__ = ["one_blas_thread"]


def one_blas_thread():
    """A context manager limiting every BLAS library loaded in the process to one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
