"""``--cluster``: connect to the Dask scheduler before a run starts, close the client after."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..runtime import RunOptions
from ._common import print_error

__all__ = ["run_on_cluster"]

EXIT_USAGE = 2


def run_on_cluster(options: RunOptions, execute: Callable[[RunOptions], int]) -> int:
    """Connect (exit 2 with a message when the scheduler cannot be reached: nothing is
    recorded), run ``execute`` and close the client. Without ``-j``, the run's concurrency is
    the cluster's thread count, not this machine's CPU count."""
    from ..runtime._cluster import ClusterError, connect, disconnect

    assert options.cluster is not None
    try:
        cluster = connect(options.cluster)
    except ClusterError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    try:
        if options.max_concurrency is None:
            threads = cluster.threads()
            options = dataclasses.replace(options, max_concurrency=max(threads, options.concurrency))
        return execute(options)
    finally:
        disconnect()
