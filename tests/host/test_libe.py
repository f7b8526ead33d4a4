"""What the host relies on in KX's libe.so, measured (libe_probe.c and through ctypes)."""
import subprocess

import pytest

from qhost import TARGET

PROBE = TARGET / "host/libe_probe"


@pytest.fixture(scope="module")
def probe():
    out = subprocess.run([str(PROBE), "4", "20000"], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    return dict(line.split("=", 1) for line in out.split())


def test_ks_and_sn_intern(probe):
    assert probe["ks_interns"] == "1" and probe["sn_interns"] == "1"


def test_b9_header_is_little_endian_after_khp_init(probe):
    # mode 3: q's -8! framing; mode -1 (in-process) marks byte 2 and stores symbol pointers
    assert probe["b9_3_hdr"] == "01000000"
    assert probe["b9_m1_hdr"] == "01000300"


def test_allocation_from_several_threads_at_once(probe):
    # 4 threads each allocate/free lists, dicts, symbols, b9/d9 round trips and r1/r0 a
    # main-thread object concurrently: no crash, counts and interning consistent
    assert probe["done"] == "1"
    assert probe["shared_r_after"] == "0"
    assert probe["interned_mismatch"] == "0"
    assert probe["roundtrip_failures"] == "0"
    assert probe["thread_m4_leftover"] == "0"


def test_pool_marker_in_the_attribute_byte(probe):
    # libe marks objects from the main thread's pool (after khp) with a = -128 (0x80):
    # an extension must not read x->a as "has an attribute" without masking 0x7f.
    assert probe["fresh_attr_main"] == "-128"
    assert probe["fresh_attr_thread"] == "0"


def test_host_is_initialised(q):
    x = q.j(1)
    assert x.b9()[0] == 1                    # khp("",-1) done: little-endian header
    assert q.shim.setm(1) == 1               # setm(1) done


def test_r0_on_another_thread_does_not_return_memory_to_the_owner(probe):
    # [cclient] "K objects must be freed from the thread they are allocated within":
    # libe does not crash when this is broken, but a main-thread object r0'd on a worker
    # is not given back to the main thread's pool (m4 still counts it there).
    assert int(probe["main_pool_freed_elsewhere_leftover"]) > 0
    assert probe["cross_thread_r0_m4_delta"] == "0"   # worker-made objects are not pooled
