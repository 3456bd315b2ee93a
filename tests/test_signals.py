"""Signals a run meets besides a plain Ctrl-C, and what they leave behind: here, a kernel that an interrupted
compile left broken in MLX's kernel cache."""


def test_a_broken_kernel_in_mlxs_cache_is_removed_when_a_command_starts(tmp_path, monkeypatch):
    """A kernel file an interrupted compile left empty or cut short failed every later run that needed it;
    the check at a recipe's start removes it (MLX compiles it again) and says so."""
    from audiotrain._system import mlx_kernel_cache
    from audiotrain.recipes._run import check_kernel_cache

    import mlx.core as mx

    fused = mx.compile(lambda x: mx.exp(x) * 3.25 + x)  # at least one compiled kernel in the cache
    mx.eval(fused(mx.ones(4)))
    real = max(mlx_kernel_cache().glob("lib*.so"), key=lambda p: p.stat().st_mtime)
    for name in ("TMP", "TEMP", "TEMPDIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    cache = mlx_kernel_cache()
    cache.mkdir(parents=True)
    data = real.read_bytes()
    (cache / "libgood.so").write_bytes(data)
    (cache / "libempty.so").write_bytes(b"")
    (cache / "libcut.so").write_bytes(data[: len(data) // 2])
    (cache / "tmp_1234abcd.so").write_bytes(b"")  # another process's compile, still being written
    said: list[str] = []
    check_kernel_cache(on_cpu=True, log=said.append)
    assert sorted(p.name for p in cache.iterdir()) == ["libgood.so", "tmp_1234abcd.so"]
    (line,) = said
    assert line.startswith(f"removed 2 broken kernel file(s) from {cache}") and "libempty.so" in line
    check_kernel_cache(on_cpu=True, log=said.append)
    assert len(said) == 1  # nothing more to say
