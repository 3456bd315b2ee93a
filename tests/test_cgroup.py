"""_cgroup.py: the memory limit of this process's cgroup, read from fake cgroup trees (not the machine's)."""

import os
from pathlib import Path

from audiotrain import _cgroup
from audiotrain._cgroup import cgroup_memory_limit
from audiotrain.recipes.config_cli import check_fits_memory

import mlx.nn as nn
import pytest

V1_UNLIMITED = "9223372036854771712"  # what cgroup v1 writes for "no limit"


def fake_cgroups(tmp_path: Path, own: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup mount at tmp_path/cgroup holding `files` (path below the mount: content), and a
    /proc/self/cgroup that reads `own`."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    (tmp_path / "self_cgroup").write_text(own)
    return root, tmp_path / "self_cgroup"


def test_a_v2_limit_of_the_process_cgroup_or_a_cgroup_above_it_is_found(tmp_path):
    # A Slurm job's step inside its job cgroup: the job's --mem holds for the step, which sets none itself.
    root, own = fake_cgroups(
        tmp_path,
        "0::/system.slice/slurmstepd.scope/job_7/step_0\n",
        {
            "memory.max": "max",
            "system.slice/slurmstepd.scope/job_7/memory.max": "4294967296",
            "system.slice/slurmstepd.scope/job_7/step_0/memory.max": "max",
        },
    )
    job = root / "system.slice/slurmstepd.scope/job_7/memory.max"
    assert cgroup_memory_limit(root, own) == (4294967296, job)
    # The smallest one wins, whichever level sets it.
    (root / "system.slice/slurmstepd.scope/job_7/step_0/memory.max").write_text("1073741824\n")
    assert cgroup_memory_limit(root, own)[0] == 1073741824


def test_a_container_reads_its_own_limit_at_the_mount_point(tmp_path):
    # docker run --memory 2g with a cgroup namespace: "0::/" and the limit at the mount itself.
    root, own = fake_cgroups(tmp_path, "0::/\n", {"memory.max": "2147483648"})
    assert cgroup_memory_limit(root, own) == (2147483648, root / "memory.max")
    # Without a namespace the line names a host path the container's mount does not hold: the mount's own.
    own.write_text("0::/docker/0123abcd\n")
    assert cgroup_memory_limit(root, own) == (2147483648, root / "memory.max")


def test_the_limit_of_a_cgroup_whose_path_is_not_utf8_is_found(tmp_path):
    # A cgroup's path is a folder name's bytes (a systemd unit's, a Slurm job's): read as text, such a line
    # made /proc/self/cgroup count as unreadable, and the process's own cgroup's limit was missed.
    root = tmp_path / "cgroup"
    unit = os.fsencode(root) + b"/system.slice/caf\xc3.scope"
    os.makedirs(unit)
    with open(unit + b"/memory.max", "wb") as limit_file:
        limit_file.write(b"1073741824\n")
    own = tmp_path / "self_cgroup"
    own.write_bytes(b"0::/system.slice/caf\xc3.scope\n")
    limit, file = cgroup_memory_limit(root, own)
    assert (limit, os.fsencode(file)) == (1073741824, unit + b"/memory.max")


def test_a_v1_memory_limit_is_read_and_its_unlimited_value_is_no_limit(tmp_path):
    root, own = fake_cgroups(
        tmp_path,
        "12:pids:/user.slice\n4:cpu,cpuacct:/\n3:memory:/process_api/abc\n0::/\n",
        {
            "memory/memory.limit_in_bytes": V1_UNLIMITED,
            "memory/process_api/memory.limit_in_bytes": V1_UNLIMITED,
            "memory/process_api/abc/memory.limit_in_bytes": V1_UNLIMITED,
        },
    )
    assert cgroup_memory_limit(root, own) is None
    limited = root / "memory/process_api/abc/memory.limit_in_bytes"
    limited.write_text("3221225472\n")
    assert cgroup_memory_limit(root, own) == (3221225472, limited)


@pytest.mark.parametrize("text", ["max", V1_UNLIMITED, str(2**62), "", "garbage", "-1"])
def test_max_absurd_or_unreadable_values_mean_no_limit(tmp_path, text):
    root, own = fake_cgroups(tmp_path, "0::/a\n", {"a/memory.max": text, "memory.max": "max"})
    assert cgroup_memory_limit(root, own) is None


def test_no_cgroup_file_system_means_no_limit(tmp_path):
    # macOS, or /proc not mounted: neither the mount nor the process's list exists.
    assert cgroup_memory_limit(tmp_path / "none", tmp_path / "no_self_cgroup") is None


def test_a_model_too_big_for_the_cgroup_limit_is_refused_naming_the_file(tmp_path, monkeypatch):
    # MLX sizes its limit from the machine's memory: a container's 1 GB passed a 1.6 GB model, which the OOM
    # killer then ended mid-training.
    root, own = fake_cgroups(tmp_path, "0::/\n", {"memory.max": str(10**9)})
    monkeypatch.setattr(_cgroup, "CGROUP_ROOT", root)
    monkeypatch.setattr(_cgroup, "OWN_CGROUPS", own)
    with pytest.raises(ValueError) as refused:
        check_fits_memory(nn.Linear(10_000, 10_000), "--width 10000")  # 100 M parameters: 1.6 GB to train
    assert str(refused.value) == (
        "--width 10000: a model of 100,010,000 parameters, whose training needs 1.6 GB for its weights, "
        "gradients and AdamW's two moments alone, more than the 1.0 GB this process's cgroup allows "
        f"({root / 'memory.max'}: a container's, job's or unit's limit); choose a smaller model"
    )


def test_a_v2_cpu_quota_is_read_in_cores_and_the_smallest_level_wins(tmp_path):
    # docker run --cpus 1.5 inside a systemd slice with CPUQuota=400%.
    root, own = fake_cgroups(
        tmp_path,
        "0::/system.slice/docker-abc.scope\n",
        {
            "cpu.max": "max 100000",
            "system.slice/cpu.max": "400000 100000",
            "system.slice/docker-abc.scope/cpu.max": "150000 100000",
        },
    )
    assert _cgroup.cgroup_cpu_limit(root, own) == 1.5
    (root / "system.slice/docker-abc.scope/cpu.max").write_text("max 100000\n")
    assert _cgroup.cgroup_cpu_limit(root, own) == 4.0


def test_a_v1_cpu_quota_is_read_and_minus_one_is_none(tmp_path):
    root, own = fake_cgroups(
        tmp_path,
        "4:cpu,cpuacct:/kubepods/pod1\n3:memory:/kubepods/pod1\n",
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "cpu/kubepods/pod1/cpu.cfs_quota_us": "200000",
            "cpu/kubepods/pod1/cpu.cfs_period_us": "100000",
        },
    )
    assert _cgroup.cgroup_cpu_limit(root, own) == 2.0
    (root / "cpu/kubepods/pod1/cpu.cfs_quota_us").write_text("-1\n")
    assert _cgroup.cgroup_cpu_limit(root, own) is None


@pytest.mark.parametrize("text", ["max 100000", "garbage", "", "0 100000", "100000 0"])
def test_no_or_unreadable_cpu_quota_means_none(tmp_path, text):
    root, own = fake_cgroups(tmp_path, "0::/\n", {"cpu.max": text})
    assert _cgroup.cgroup_cpu_limit(root, own) is None
    assert _cgroup.cgroup_cpu_limit(tmp_path / "absent", tmp_path / "absent_self") is None


def test_usable_cores_is_the_affinity_or_the_cpu_quota_rounded_up_if_fewer(monkeypatch):
    # The local processes and `-n auto`'s test workers count these: one per listed core would put 64
    # processes on a 2-core quota in a container on a 64-core host.
    from audiotrain import _system
    from audiotrain.distributed import local

    monkeypatch.setattr(_system.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(_system, "cgroup_cpu_limit", lambda: 1.5)
    assert _system.usable_cores() == 2
    assert local.usable_cores() == 2
    monkeypatch.setattr(_system, "cgroup_cpu_limit", lambda: None)
    assert _system.usable_cores() == 64
    monkeypatch.setattr(_system, "cgroup_cpu_limit", lambda: 0.2)
    assert _system.usable_cores() == 1
    # A quota above the affinity (`taskset -c 0,1` in a `--cpus 8` container) leaves the affinity's count.
    monkeypatch.setattr(_system.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(_system, "cgroup_cpu_limit", lambda: 8.0)
    assert _system.usable_cores() == 2
