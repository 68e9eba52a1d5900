"""The Numba kernel cache outside the data directory (ruvector_dag/runtime/kernel_cache.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ruvector_dag.runtime import kernel_cache


def test_default_is_the_users_cache_home_or_tmp_never_the_data_directory(tmp_path: Path) -> None:
    path, origin = kernel_cache.default_dir()
    assert origin in ("home", "tmp")
    if origin == "home":
        assert path.parts[-2:] == (".cache", "ruvector_dag")
    else:
        assert path.name == f"ruvector_dag_cache-{os.geteuid()}"


def test_an_explicit_setting_is_used_and_seeded(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "kernels_x").mkdir(parents=True)
    (seed / "kernels_x" / "f.nbi").write_bytes(b"index")
    (seed / "kernels_x" / "f.nbc").write_bytes(b"data")
    target = tmp_path / "cache"
    cache = kernel_cache.prepare(str(target))
    assert cache.origin == "setting" and cache.path == target and cache.problem is None
    assert kernel_cache.seed(target, seed) == 2
    assert (target / "kernels_x" / "f.nbi").read_bytes() == b"index"
    assert kernel_cache.seed(target, seed) == 0  # up to date: nothing copied again
    # a newer seed file replaces the server's copy; a file the server compiled itself is kept
    (target / "kernels_x" / "own.nbi").write_bytes(b"mine")
    os.utime(seed / "kernels_x" / "f.nbi", (4e9, 4e9))
    assert kernel_cache.seed(target, seed) == 1
    assert (target / "kernels_x" / "own.nbi").read_bytes() == b"mine"


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    """Whoever can write the cache can run code in the server: such a directory is not used."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    cache = kernel_cache.prepare(str(shared))
    assert cache.origin == "private" and cache.path != shared
    assert cache.problem is not None and "writable by its group or by others" in cache.problem
    assert oct(cache.path.stat().st_mode & 0o777) == oct(0o700)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cache = kernel_cache.prepare(str(tmp_path / "link"))
    assert cache.origin == "private" and "not a directory" in (cache.problem or "")


KERNEL = textwrap.dedent('''
    import numba, sys

    @numba.njit(cache=True)
    def kernel(x):
        return x * 2 + 1
''')

COMPILE = textwrap.dedent('''
    import sys
    from pathlib import Path
    from ruvector_dag.runtime.kernel_cache import warm_lock
    sys.path.insert(0, sys.argv[1])
    with warm_lock(Path(sys.argv[2])):
        import kern
        assert kern.kernel(3) == 7
    print(kern.kernel.stats.cache_hits.most_common() and sum(kern.kernel.stats.cache_hits.values()))
''')


def test_servers_sharing_one_cache_do_not_corrupt_it(tmp_path: Path) -> None:
    """Four processes compile into one directory at once; a fifth then loads the kernel, compiling nothing."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "kern.py").write_text(KERNEL)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", COMPILE, str(src), str(cache)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    # the lock made the three late ones load what the first compiled
    assert sorted(o.strip() for o, _ in outs).count("1") == 3, outs
    last = subprocess.run([sys.executable, "-c", COMPILE, str(src), str(cache)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert last.returncode == 0 and last.stdout.strip() == "1", last.stderr
    assert len(list(cache.rglob("*.nbi"))) == 1
