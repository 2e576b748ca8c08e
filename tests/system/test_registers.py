"""No copy of a value in the registers of the fetcher or the FUSE process.

A value fetched over TLS passes through OpenSSL, libcurl, jansson and memcpy in
the fetcher, and through the wire and the cache in the FUSE process; vector
registers (xmm/ymm/zmm) keep the last bytes those moved until something else
overwrites them, and a core dump or a debugger reads them from each thread's
saved state. Both processes wipe them after each value (secmem.h,
secmem_wipe_registers). This test takes a core of each process with gdb's
gcore, which writes every thread's general and extended register state
(NT_PRSTATUS, NT_X86_XSTATE: all zmm; no memory, by coredump_filter), and
looks for any 16 bytes of each value there.

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_registers.py
"""
import os
import shutil
import struct
import subprocess

import pytest

from conftest import binary, need
from test_privsep import (  # noqa: F401  (fixtures)
    fetch_user, fetcher_of, make_config, pki, read, userdir, vault)

NT_PRSTATUS = 1
NT_FPREGSET = 2
NT_X86_XSTATE = 0x202


def notes(core):
    """(type, name, desc) of every ELF note in a 64-bit little-endian core."""
    assert core[:4] == b"\x7fELF" and core[4] == 2 and core[5] == 1
    phoff, = struct.unpack_from("<Q", core, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
    out = []
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", core, phoff + i * phentsize)
        if p_type != 4:         # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", core, off)
            name = core[off + 12:off + 12 + namesz].rstrip(b"\0")
            doff = off + 12 + (namesz + 3) // 4 * 4
            out.append((ntype, name, core[doff:doff + descsz]))
            off = doff + (descsz + 3) // 4 * 4
    return out


def core_of(pid, outdir):
    """A core of pid with its threads' registers and no memory: gcore
    honours coredump_filter, and a sanitizer build's shadow mappings would
    make a core of every mapping terabytes long."""
    prefix = os.path.join(str(outdir), "core")
    flt = "/proc/%d/coredump_filter" % pid
    with open(flt) as f:
        saved = f.read().strip()
    with open(flt, "w") as f:
        f.write("0")
    try:
        r = subprocess.run(["gcore", "-o", prefix, str(pid)],
                           capture_output=True, text=True, timeout=180)
    finally:
        with open(flt, "w") as f:
            f.write(saved)
    path = "%s.%d" % (prefix, pid)
    assert r.returncode == 0 and os.path.exists(path), r.stdout + r.stderr
    # Registers only: a few hundred kilobytes, however large the process.
    assert os.path.getsize(path) < 64 << 20, os.path.getsize(path)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def windows(value, n=16):
    """Every n bytes of value: what one xmm register can hold of it."""
    v = value.encode()
    return {v[i:i + n] for i in range(max(1, len(v) - n + 1))}


@pytest.fixture
def daemon(make_daemon, vault, userdir, fetch_user, tmp_path):
    need(shutil.which("gcore"), "gdb's gcore (Debian package gdb)")
    cfg, values, _, _ = make_config(vault, userdir, fetch_user, tmp_path)
    d = make_daemon(cfg)
    # Many reads, each a fetch over TLS: the cache is off for the values.
    for _ in range(20):
        for name, value in values.items():
            assert read(d, name) == value
            subprocess.run([binary(), "flush", "-c",
                            str(d.config_path), name], check=True,
                           capture_output=True)
    for name, value in values.items():
        assert read(d, name) == value
    return d, values


def test_no_value_in_the_registers_of_either_process(daemon, tmp_path):
    d, values = daemon
    for pid, what in ((fetcher_of(d), "fetcher"), (d.pid, "FUSE process")):
        ns = notes(core_of(pid, tmp_path))
        kinds = [t for t, _, _ in ns]
        # One general and one extended state per thread: every zmm is here.
        assert kinds.count(NT_PRSTATUS) >= 2, (what, kinds)
        assert kinds.count(NT_X86_XSTATE) == kinds.count(NT_PRSTATUS), \
            (what, kinds)
        regs = b"".join(desc for t, _, desc in ns
                        if t in (NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE))
        for name, value in values.items():
            for w in windows(value):
                assert w not in regs, \
                    "%d bytes of %s in the registers of the %s" % (
                        len(w), name, what)
