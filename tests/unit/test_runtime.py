"""Process-wide settings churnpredict makes when imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = (
    "import numpy, churnpredict; from numpy._core.multiarray import _get_madvise_hugepage; "
    "print(_get_madvise_hugepage())"
)


@pytest.mark.parametrize(("env", "expected"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_numpy_hugepage_advice_is_off_unless_the_user_sets_it(env, expected):
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=environ, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings")
@pytest.mark.parametrize(
    ("env", "expected"), [(None, "True"), ("MALLOC_TRIM_THRESHOLD_", "False")]
)
def test_glibc_keeps_freed_memory_unless_the_user_tunes_malloc(env, expected):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if env is not None:
        environ[env] = "131072"
    out = subprocess.run(
        [sys.executable, "-c", "import churnpredict; print(churnpredict.MALLOC_TUNED)"],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected
