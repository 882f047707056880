"""A workaround for OpenCV's thread pool across ``fork`` (DataLoader workers); see :func:`single_threaded_opencv`."""

from __future__ import annotations


def single_threaded_opencv() -> None:
    """One OpenCV thread, set in the process that forks the DataLoader workers.

    Workers run in parallel already, so more OpenCV threads only oversubscribe.  It must happen in the
    parent: a forked worker that calls ``cv2.setNumThreads`` tears down a thread pool copied from the parent,
    and if the parent had used that pool (graph pictures, ``num_workers: 0``), the copy can hold a locked
    mutex and the worker hangs forever in ``pthread_cond_destroy`` (seen as a training run that stalls at an
    epoch start with idle CPUs).  A pool of one thread has no worker threads, so forking it is safe.
    """
    import cv2

    cv2.setNumThreads(1)
