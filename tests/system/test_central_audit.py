"""The audit trail on a central log server: a node's rsyslog forwards its audit file
(imfile, RFC 5424 over TCP, octet-counted, with a disk-assisted queue) to a central
rsyslog that writes one file per host with each record's line alone; `secretsfs audit
verify` verifies that central file with the audit key: the same seq/mac chain, intact;
the forwarder restarted mid-stream resumes from its saved position (no record lost);
the central server restarted, the forwarder's queue delivers what waited; the daemon
restarted, its chain goes on; one record
deleted from the central file is named. Both rsyslogs are private instances
(Debian's rsyslogd with their own config, work directory and a loopback port), never
the system's.

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_central_audit.py
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import binary, need, write_private
from test_ops import ctl, read, wait_for

HOST_RULE = {"id": "host", "match": {"host": True}, "allow": ["*"]}

CENTRAL = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
template(name="perhost" type="string" string="{logs}/%HOSTNAME%/audit.log")
template(name="line" type="string" string="%msg%\\n")
ruleset(name="remote") {{
  if $programname == "secretsfs-audit" then {{
    action(type="omfile" dynaFile="perhost" template="line"
           dirCreateMode="0700" fileCreateMode="0600")
  }}
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="remote")
"""

FORWARDER = """
global(workDirectory="{work}" localHostName="{host}" maxMessageSize="64k")
module(load="imfile")
input(type="imfile" file="{audit}" tag="secretsfs-audit" facility="authpriv"
      severity="info" freshStartTail="off" reopenOnTruncate="on")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       tcp_framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
       queue.type="LinkedList" queue.filename="forward" queue.saveOnShutdown="on"
       action.resumeRetryCount="-1" action.resumeInterval="1")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rsyslog:
    """One private rsyslogd: its own config, pid file and work directory."""

    def __init__(self, workdir, conf):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        self.conf = self.dir / "rsyslog.conf"
        self.conf.write_text(conf.replace("{WORK}", str(self.dir / "work")))
        self.proc = None

    def start(self):
        rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        self.log = open(self.dir / "rsyslogd.log", "ab")
        self.proc = subprocess.Popen(
            [rsyslogd, "-n", "-f", str(self.conf), "-i", str(self.dir / "pid")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        time.sleep(0.5)
        assert self.proc.poll() is None, self.log_text()
        return self

    def log_text(self):
        return (self.dir / "rsyslogd.log").read_text(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()


def lines(path):
    try:
        with open(path) as f:
            return [ln for ln in f.read().splitlines() if ln]
    except FileNotFoundError:
        return []


def verify(key, path, *extra):
    return subprocess.run([binary(), "audit", "verify", "-k", str(key)] + list(extra)
                          + [str(path)], capture_output=True, text=True, timeout=60)


def test_central_rsyslog_file_verifies_and_names_a_deleted_record(
        make_daemon, secrets_dir, tmp_path):
    need(shutil.which("rsyslogd") or os.path.exists("/usr/sbin/rsyslogd"),
         "rsyslogd is not installed (Debian package rsyslog)")
    val = ("val-" + secrets.token_hex(12)).encode()
    (secrets_dir / "db_password").write_bytes(val)
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    audit = tmp_path / "audit" / "audit.log"
    audit.parent.mkdir()
    port = free_port()
    logs = tmp_path / "central-logs"
    central = Rsyslog(tmp_path / "central", CENTRAL.format(
        work="{WORK}", logs=logs, port=port)).start()
    forwarder = Rsyslog(tmp_path / "forwarder", FORWARDER.format(
        work="{WORK}", host="node-a", audit=audit, port=port))
    try:
        d = make_daemon({
            "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
            "secrets": {"db_password": {"backend": "dev"}},
            "rules": [HOST_RULE],
            "audit": {"file": str(audit), "key_file": str(key),
                      "flush_interval": 0}})
        forwarder.start()
        there = logs / "node-a" / "audit.log"
        for _ in range(5):
            assert read(d, "db_password") == val
        assert wait_for(lambda: len(lines(there)) == len(lines(audit)) >= 6,
                        timeout=20), (lines(there), forwarder.log_text(),
                                      central.log_text())
        # Line for line the node's records: same seq and mac chain.
        assert lines(there) == lines(audit)
        seq = json.loads(ctl(d, "status", "--json").stdout)["audit"]["seq"]
        r = verify(key, there, "--to", str(seq))
        assert r.returncode == 0, r.stdout + r.stderr

        # The forwarder restarted mid-stream: what was written meanwhile follows.
        forwarder.stop()
        for _ in range(3):
            assert read(d, "db_password") == val
        forwarder.start()
        for _ in range(2):
            assert read(d, "db_password") == val
        # The central end restarted: the forwarder's queue keeps what it could not
        # deliver and sends it once the server is back.
        assert wait_for(lambda: len(lines(there)) == len(lines(audit)), timeout=20)
        central.stop()
        for _ in range(3):
            assert read(d, "db_password") == val
        time.sleep(1)
        central.start()
        # The daemon restarted: its chain goes on in the same file, and centrally.
        d.stop()
        d.start()
        assert read(d, "db_password") == val
        d.stop()
        events = [json.loads(ln)["event"] for ln in lines(audit)]
        assert events.count("start") == 2 and events.count("stop") == 2
        assert json.loads(lines(audit)[-1])["event"] == "stop"
        assert wait_for(lambda: len(lines(there)) == len(lines(audit)), timeout=20), (
            forwarder.log_text(), central.log_text())
        assert lines(there) == lines(audit)
        r = verify(key, there)
        assert r.returncode == 0, r.stdout + r.stderr

        # A record deleted from the central file is named.
        recs = lines(there)
        gone = json.loads(recs[4])["seq"]
        cut = tmp_path / "cut.log"
        cut.write_text("\n".join(recs[:4] + recs[5:]) + "\n")
        r = verify(key, cut)
        assert r.returncode == 1, r.stdout + r.stderr
        out = r.stdout + r.stderr
        want = ("cut.log:5: removed: expected seq %d, found seq %d: records %d..%d "
                "are missing" % (gone, gone + 1, gone, gone))
        assert want in out, out
        # And none of it holds the value.
        for text in (there.read_text(), central.log_text(), forwarder.log_text()):
            assert val.decode() not in text
    finally:
        forwarder.stop()
        central.stop()
