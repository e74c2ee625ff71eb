"""deepsparse_lite.cpu: topology from (fake and real) sysfs, ISA agreement, NM_ARCH."""
import os
import subprocess
import sys

import pytest

from deepsparse_lite import cpu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISA_NAMES = ("generic", "avx2", "avx512")


def _run(code, **env):
    full = dict(os.environ)
    for k in ("NM_ARCH", "DSL_ISA"):
        full.pop(k, None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=60)


def test_keys_types_and_consistency():
    arch = cpu.cpu_architecture()
    for key in ("isa", "vnni", "bf16", "vendor", "architecture", "num_cores", "num_hw_threads",
                "threads_per_core", "num_sockets", "num_numa", "cores_per_socket",
                "L1_data_cache_size", "L2_cache_size", "L3_cache_size", "available_num_cores",
                "available_num_hw_threads", "available_num_numa", "available_num_sockets",
                "available_sockets", "available_cores_per_socket", "available_threads_per_core"):
        assert key in arch, key
        assert getattr(arch, key) == arch[key]
    assert arch.isa in cpu.VALID_VECTOR_EXTENSIONS
    assert isinstance(arch.vnni, bool) and isinstance(arch.bf16, bool)
    assert 1 <= arch.available_num_cores <= arch.num_cores <= arch.num_hw_threads
    assert arch.available_num_hw_threads == len(os.sched_getaffinity(0))
    assert arch.num_physical_cores == arch.cores_per_socket * arch.num_sockets
    assert arch.num_available_physical_cores == arch.available_num_cores
    assert arch.num_threads == arch.threads_per_core * arch.cores_per_socket * arch.num_sockets
    assert cpu.cpu_details() == (arch.num_available_physical_cores, arch.isa, arch.vnni)
    assert cpu.cpu_avx2_compatible() == (arch.isa in ("avx2", "avx512"))
    assert cpu.cpu_avx512_compatible() == (arch.isa == "avx512")
    assert cpu.cpu_vnni_compatible() == arch.vnni


def test_isa_agrees_with_kernels():
    from deepsparse_lite.kernels import isa_level
    assert cpu.cpu_architecture().isa == ISA_NAMES[isa_level()]


def test_memoised_and_read_only():
    arch = cpu.cpu_architecture()
    assert cpu.cpu_architecture() is arch
    with pytest.raises(AttributeError, match="Architecture: can't modify isa"):
        arch.isa = "avx512"
    with pytest.raises(AttributeError, match="can't modify"):
        arch["num_cores"] = 99
    with pytest.raises(AttributeError):
        arch.update(num_cores=99)
    assert arch.num_cores != 99
    import pickle
    assert pickle.loads(pickle.dumps(arch)) == arch


def test_parsers():
    assert cpu._parse_cpu_list("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert cpu._parse_cpu_list("") == []
    assert cpu._parse_size("32K") == 32768
    assert cpu._parse_size("1M") == 1 << 20
    assert cpu._parse_size("512") == 512
    assert cpu._parse_size(None) == 0


def _fake_sysfs(root):
    """2 sockets x 2 cores x 2 SMT threads, AMD numbering (threads of core k are 2k, 2k+1),
    one NUMA node per socket."""
    cpu_dir, node_dir = root / "cpu", root / "node"
    (cpu_dir).mkdir()
    (cpu_dir / "online").write_text("0-7\n")
    for c in range(8):
        core, sock = c // 2, c // 4
        topo = cpu_dir / f"cpu{c}" / "topology"
        topo.mkdir(parents=True)
        (topo / "core_id").write_text(f"{core % 2}\n")  # core_id repeats across sockets
        (topo / "physical_package_id").write_text(f"{sock}\n")
        (topo / "thread_siblings_list").write_text(f"{2 * core}-{2 * core + 1}\n")
        for i, (lvl, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                               (2, "Unified", "1024K"), (3, "Unified", "16M")]):
            idx = cpu_dir / f"cpu{c}" / "cache" / f"index{i}"
            idx.mkdir(parents=True)
            (idx / "level").write_text(f"{lvl}\n")
            (idx / "type").write_text(kind + "\n")
            (idx / "size").write_text(size + "\n")
    for n in range(2):
        (node_dir / f"node{n}").mkdir(parents=True)
        (node_dir / f"node{n}" / "cpulist").write_text(f"{4 * n}-{4 * n + 3}\n")
    return str(cpu_dir), str(node_dir)


@pytest.mark.parametrize("affinity,expect", [
    (range(8), dict(available_num_cores=4, available_num_hw_threads=8, available_num_sockets=2,
                    available_num_numa=2, available_cores_per_socket=2, available_threads_per_core=2)),
    ([0, 2, 4], dict(available_num_cores=3, available_num_hw_threads=3, available_num_sockets=2,
                     available_num_numa=2, available_cores_per_socket=2, available_threads_per_core=1)),
    ([0, 1], dict(available_num_cores=1, available_num_hw_threads=2, available_num_sockets=1,
                  available_num_numa=1, available_cores_per_socket=1, available_threads_per_core=2)),
])
def test_fake_topology(tmp_path, monkeypatch, affinity, expect):
    cpu_dir, node_dir = _fake_sysfs(tmp_path)
    monkeypatch.setattr(cpu, "_SYS_CPU", cpu_dir)
    monkeypatch.setattr(cpu, "_SYS_NODE", node_dir)
    monkeypatch.setattr(cpu, "_affinity", lambda: sorted(affinity))
    arch = cpu._build_architecture()
    assert (arch.num_cores, arch.num_hw_threads, arch.num_sockets, arch.num_numa) == (4, 8, 2, 2)
    assert (arch.cores_per_socket, arch.threads_per_core) == (2, 2)
    assert arch.num_physical_cores == 4
    assert (arch.L1_data_cache_size, arch.L1_instruction_cache_size) == (48 << 10, 32 << 10)
    assert (arch.L2_cache_size, arch.L3_cache_size) == (1 << 20, 16 << 20)
    for key, value in expect.items():
        assert arch[key] == value, key
    assert arch.num_available_physical_cores == expect["available_num_cores"]


def test_psutil_fallback_without_sysfs(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu, "_SYS_CPU", str(tmp_path / "missing"))
    monkeypatch.setattr(cpu, "_SYS_NODE", str(tmp_path / "missing"))
    arch = cpu._build_architecture()
    assert arch.num_hw_threads >= arch.num_cores >= 1
    assert arch.available_num_hw_threads == len(os.sched_getaffinity(0))
    assert arch.available_num_cores >= 1


def test_print_hardware_capability(capsys):
    cpu.print_hardware_capability()
    out = capsys.readouterr().out
    assert "CPU detected with" in out and "FP32 model performance supported" in out


CHECK = ("from deepsparse_lite.cpu import cpu_architecture; from deepsparse_lite.kernels import "
         "isa_level; a = cpu_architecture(); print(a.isa, a.hardware_isa, isa_level())")


def test_nm_arch_lowers_to_generic():
    r = _run(CHECK, NM_ARCH="generic")
    assert r.returncode == 0, r.stderr
    isa, _, level = r.stdout.split()
    assert (isa, level) == ("generic", "0")


def test_nm_arch_never_raises_above_hardware():
    r = _run(CHECK, NM_ARCH="avx512")
    assert r.returncode == 0, r.stderr
    isa, hw, level = r.stdout.split()
    assert isa == hw == ISA_NAMES[int(level)]


def test_dsl_isa_wins_and_other_family_means_generic():
    r = _run(CHECK, NM_ARCH="avx512", DSL_ISA="generic")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "generic"
    if cpu.cpu_architecture().architecture == "x86_64":
        r = _run(CHECK, NM_ARCH="neon")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0] == "generic"


@pytest.mark.parametrize("var", ["NM_ARCH", "DSL_ISA"])
def test_invalid_isa_override_is_oserror(var):
    r = _run("from deepsparse_lite.cpu import cpu_architecture\n"
             "try:\n    cpu_architecture()\nexcept OSError as e:\n    print('OSError', e)\n",
             **{var: "avx9000"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OSError") and "avx9000" in r.stdout and "avx512" in r.stdout


def test_affinity_restricts_available_cores():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs in the affinity mask")
    first = min(os.sched_getaffinity(0))
    r = _run(f"import os; os.sched_setaffinity(0, {{{first}}})\n"
             "from deepsparse_lite.cpu import cpu_architecture; a = cpu_architecture()\n"
             "print(a.available_num_cores, a.available_num_hw_threads, a.num_available_physical_cores)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1", "1"]
