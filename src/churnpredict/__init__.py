"""churnpredict: which clients are about to freeze their projects, why, and who should call."""

import os
import sys

__version__ = "0.1.0"


def _no_numpy_hugepage_advice() -> None:
    """Stop NumPy asking the kernel for huge pages, unless the user chose otherwise.

    NumPy marks every large array ``MADV_HUGEPAGE``. Where the kernel has no huge page
    at hand (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, as on our
    2-core benchmark VMs) each first touch of fresh memory then stalls in compaction:
    filling 100 MB of new array took 249 ms there instead of 53 ms, and the feature
    engine allocates gigabytes (numpy/numpy#31590). ``NUMPY_MADVISE_HUGEPAGE=1`` keeps
    NumPy's default.
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"  # read when NumPy is first imported
    if "numpy" in sys.modules:  # already imported (a notebook, pytest): switch it now
        try:
            from numpy._core.multiarray import _set_madvise_hugepage
        except ImportError:  # pragma: no cover - other NumPy layouts keep the default
            return
        _set_madvise_hugepage(False)


_no_numpy_hugepage_advice()
