"""pytest fixtures for the stand-in q host (see qhost.py, README.md)."""
import os
from pathlib import Path

import pytest

from qhost import DEFAULT_EXT, TARGET, Host

FAKE_EXT = Path(os.environ.get("QHOST_FAKE_EXT", TARGET / "host/libfake_ext.so"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "valgrind_selftest: deliberate memory bugs; run only by run.sh --valgrind "
        "(QHOST_VALGRIND_SELFTEST=1) to prove valgrind_check.py catches them")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("QHOST_VALGRIND_SELFTEST") == "1":
        return
    skip = pytest.mark.skip(reason="valgrind self-test only (run.sh --valgrind)")
    for item in items:
        if "valgrind_selftest" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def q() -> Host:
    """The host: libqshim.so + libe.so loaded globally, q's main thread = this one."""
    return Host.get()


@pytest.fixture(scope="session")
def fake(q):
    """The C test extension (tests/host/fake_ext.c)."""
    return q.load(FAKE_EXT)


@pytest.fixture(scope="session")
def qprom(q):
    """The real extension: $QPROM_SO, default target/l64/libqprom.so."""
    path = Path(os.environ.get("QPROM_SO", DEFAULT_EXT))
    if not path.exists():
        pytest.skip(f"{path} not built")
    return q.load(path)


@pytest.fixture
def proc(q, qprom):
    """A stand-in q process whose .z handlers init and stop act on, as prom.q passes
    them (test_lifecycle.Proc); stopped after the test."""
    from test_lifecycle import Proc
    p = Proc(q, qprom)
    yield p
    p.restore()


@pytest.fixture(params=["null", "object"])
def any_krr_mode(request, q):
    """Run the test under both krr behaviours: "null" (KX's documented one and libe's:
    krr records the message and returns 0) and "object" (krr also returns a -128
    error object). Exports that `return krr(msg)` must pass both."""
    with q.krr_mode(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _host_clean(request):
    """After every test: no contract violations, no hook errors, no pending error."""
    if "q" not in request.fixturenames:
        yield
        return
    q = request.getfixturevalue("q")
    q.clear_violations()
    yield
    try:
        q.check_clean()
    finally:
        q.undefine_all()
