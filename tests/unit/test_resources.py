from __future__ import annotations

import pytest

from pyc.errors import InvalidArgument
from pyc.runtime.resources import parse_bytes, parse_cpuset, resources


@pytest.mark.parametrize(("value", "n"), [("512", 512), ("64m", 64 << 20), ("64MB", 64 << 20), ("64MiB", 64 << 20), ("1.5g", 3 << 29), ("2k", 2048), ("10b", 10)])
def test_docker_units(value: str, n: int) -> None:
    assert parse_bytes("--memory", value) == n


@pytest.mark.parametrize("value", ["12XB", "-1", "", "m", "1.2.3m"])
def test_bad_units(value: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_bytes("--memory", value)


def test_oci_resources_for_docker_flags() -> None:
    r = resources(memory="64m", cpus="0.5", cpu_shares="512", pids_limit="100")
    assert r == {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "cpu": {"quota": 50_000, "period": 100_000, "shares": 512}, "pids": {"limit": 100}}
    assert resources(memory="64m", memory_swap="-1")["memory"]["swap"] == -1
    assert resources() == {}


def test_cpusets() -> None:
    assert parse_cpuset("0-2,4") == {0, 1, 2, 4}
    with pytest.raises(InvalidArgument):
        parse_cpuset("a-b")
