"""The deployment files in deploy/: each is checked by the tool that would
read it, where this machine has one, and its hardening is asserted key by
key, since a hardening key is the easiest thing to lose in an edit.

- systemd: `systemd-analyze verify` and `systemd-analyze security --offline`
  on a copy of the unit whose ExecStart is the binary just built (verify
  checks that it exists); systemd need not be PID 1 for either.
- AppArmor: `apparmor_parser --skip-kernel-load` compiles the profile.
- Dockerfile: no engine here, so it is parsed; and the final stage's file
  assembly runs for real against the binary just built, and the result
  runs in a chroot: the image holds everything the daemon loads.
- Compose and Kubernetes: YAML parsed (python3-yaml), keys asserted.
- PCI-DSS.md: every test it names exists.
"""
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, binary, need

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "secretsfs.service"
PROFILE = DEPLOY / "apparmor" / "secretsfs"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "kubernetes"

CAPS = {"CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SETUID",
        "CAP_SETGID", "CAP_SETPCAP", "CAP_IPC_LOCK", "CAP_KILL"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def mib(text):
    m = re.fullmatch(r"(\d+)([KMG]i?B?)?", str(text).strip())
    assert m, text
    n = int(m.group(1))
    unit = (m.group(2) or "").rstrip("B").rstrip("i")
    return n * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit] / (1 << 20)


def locked_mib():
    """memory.locked_bytes of the reference config, in MiB."""
    import json
    cfg = json.loads((ROOT / "conf" / "secretsfs.json").read_text())
    return mib(cfg["memory"]["locked_bytes"])


# ---- systemd ----------------------------------------------------------------

def unit_settings(path=UNIT):
    """{(section, key): [values]} of a unit file; comments dropped."""
    out, section = {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def unit_copy(tmp_path):
    """The unit with ExecStart pointing at the binary just built."""
    text = UNIT.read_text()
    assert "ExecStart=/usr/sbin/secretsfs " in text
    copy = tmp_path / "secretsfs.service"
    copy.write_text(text.replace("/usr/sbin/secretsfs", binary()))
    return copy


def systemd_analyze():
    path = shutil.which("systemd-analyze")
    need(path, "systemd-analyze is not installed (Debian package systemd)")
    return path


def test_systemd_unit_verifies(tmp_path):
    copy = unit_copy(tmp_path)
    r = subprocess.run([systemd_analyze(), "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # verify only warns about unknown keys and unparsable values.
    said = [l for l in (r.stdout + r.stderr).splitlines()
            if "secretsfs.service" in l]
    assert said == [], said


def test_systemd_verify_would_catch_a_broken_unit(tmp_path):
    """The check above has teeth: a missing binary fails verify."""
    copy = unit_copy(tmp_path)
    copy.write_text(copy.read_text().replace(binary(), "/nonexistent/sfs"))
    r = subprocess.run([systemd_analyze(), "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode != 0
    assert "/nonexistent/sfs" in r.stderr


def test_systemd_unit_exposure_stays_low(tmp_path):
    # systemd rates 0 (locked down) to 10 (unprotected); --threshold is in
    # tenths. The unit scores 4.8: removing one protection shows here.
    copy = unit_copy(tmp_path)
    r = subprocess.run([systemd_analyze(), "security", "--offline=true",
                        "--man=no", "--threshold=50", str(copy)],
                       capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    m = re.search(r"Overall exposure level for secretsfs.service: ([\d.]+)",
                  r.stdout)
    assert m and float(m.group(1)) <= 5.0, r.stdout[-500:]


def kernel_capabilities():
    header = pathlib.Path("/usr/include/linux/capability.h")
    need(header.exists(), "linux-libc-dev is not installed")
    return set(re.findall(r"#define (CAP_[A-Z_]+)\s+\d+\s*$",
                          header.read_text(), re.M))


def test_systemd_unit_hardening():
    s = unit_settings()

    def one(key):
        vals = s.get(("Service", key))
        assert vals and len(vals) == 1, (key, vals)
        return vals[0]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("Restart") == "always"
    assert one("WatchdogSec") == "30s"
    assert one("ExecStart").split()[1:3] == ["mount", "-f"]
    assert one("LimitCORE") == "0"
    assert mib(one("LimitMEMLOCK")) >= locked_mib() + 16
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                      ("MemoryDenyWriteExecute", "yes"),
                      ("SystemCallArchitectures", "native"),
                      ("ProtectKernelTunables", "yes"),
                      ("ProtectKernelModules", "yes"),
                      ("ProtectControlGroups", "yes"),
                      ("RestrictSUIDSGID", "yes"), ("LockPersonality", "yes"),
                      ("DevicePolicy", "closed"),
                      ("DeviceAllow", "/dev/fuse rw"),
                      ("RestrictNamespaces", "mnt"), ("UMask", "0077")):
        assert one(key) == want, key
    assert set(one("ReadWritePaths").split()) == {"/var/log/secretsfs", "/run"}
    caps = set(one("CapabilityBoundingSet").split())
    assert caps == CAPS
    assert caps <= kernel_capabilities()
    assert one("AmbientCapabilities") == ""
    # Each capability granted says why, in the comment above it.
    text = UNIT.read_text()
    for cap in caps:
        assert re.search(r"^#\s+%s\s+\S" % cap, text, re.M), cap
    # Mount namespacing settings cut propagation to the host: the unit must
    # say how the mount gets there anyway.
    assert "publishes its mount" in text


# ---- AppArmor ---------------------------------------------------------------

def apparmor_parser():
    path = shutil.which("apparmor_parser") or "/usr/sbin/apparmor_parser"
    need(os.path.exists(path),
         "apparmor_parser is not installed (Debian package apparmor)")
    return path


def test_apparmor_profile_compiles(tmp_path):
    r = subprocess.run([apparmor_parser(), "--skip-kernel-load",
                        "--skip-read-cache", str(PROFILE)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # And the parser does reject a broken one.
    bad = tmp_path / "secretsfs"
    bad.write_text(PROFILE.read_text().replace("capability sys_chroot,",
                                               "capability sys_chrootx,"))
    r = subprocess.run([apparmor_parser(), "--skip-kernel-load",
                        "--skip-read-cache", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "sys_chrootx" in r.stderr


def test_apparmor_profile_grants_what_the_unit_grants():
    text = PROFILE.read_text()
    caps = set(re.findall(r"^\s*capability (\w+),", text, re.M))
    assert {"CAP_" + c.upper() for c in caps} == CAPS
    assert re.search(r"^\s*/dev/fuse rw,", text, re.M)
    assert re.search(r"^\s*mount fstype=fuse\.secretsfs options=\(ro, nosuid, "
                     r"nodev, noexec\)", text, re.M)
    assert re.search(r"^\s*profile secretsfs /usr/sbin/secretsfs ", text, re.M)


# ---- Dockerfile -------------------------------------------------------------

def dockerfile():
    """[(instruction, arguments)], continuation lines joined."""
    out, cur = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.rstrip()
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if cur and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def stages():
    """[(FROM arguments, [(instruction, arguments)])]"""
    out = []
    for ins, args in dockerfile():
        if ins == "FROM":
            out.append((args, []))
        elif out:
            out[-1][1].append((ins, args))
    return out


def test_dockerfile_is_multistage_and_pinned():
    st = stages()
    assert len(st) >= 2
    for frm, _ in st:
        image = frm.split()[0]
        if image == "scratch":
            continue
        assert DIGEST.search(image), "not pinned by digest: " + frm
    build_from, _ = st[0]
    assert build_from.startswith("debian:bookworm@sha256:")
    assert build_from.split()[-1] == "build"
    final_from, final = st[-1]
    assert final_from.split()[0] == "scratch"
    # The final stage takes only the assembled tree from the build stage.
    copies = [a for i, a in final if i in ("COPY", "ADD")]
    assert copies == ["--from=build /rootfs/ /"]
    assert not [a for i, a in final if i == "RUN"]
    # The digest's source is recorded.
    text = DOCKERFILE.read_text()
    assert "docker-library/repo-info" in text and "bookworm.md" in text


def test_dockerfile_healthcheck_user_entrypoint():
    _, final = stages()[-1]
    ins = dict(final)
    assert re.fullmatch(r'.*CMD \["/usr/sbin/secretsfs", "health".*\]',
                        ins["HEALTHCHECK"]), ins["HEALTHCHECK"]
    assert "--interval=" in ins["HEALTHCHECK"]
    assert ins["USER"] == "0:0"
    assert ins["ENTRYPOINT"] == '["/usr/sbin/secretsfs"]'
    assert ins["CMD"] == '["mount", "-f", "-c", "/etc/secretsfs/secretsfs.json"]'
    assert ins["STOPSIGNAL"] == "SIGTERM"


def assembly_script():
    """The build stage's RUN that assembles /rootfs."""
    runs = [a for i, a in stages()[0][1] if i == "RUN" and "out=/rootfs" in a]
    assert len(runs) == 1
    return runs[0]


def test_dockerfile_final_stage_holds_what_the_daemon_loads(tmp_path):
    """Run the build stage's assembly against the binary just built, then
    run that binary inside the assembled tree (chroot): nothing is missing,
    and there is no shell."""
    need(os.geteuid() == 0, "chroot needs root")
    need(os.path.exists("/usr/bin/fusermount3"), "fuse3 is not installed")
    staging, rootfs = tmp_path / "staging", tmp_path / "rootfs"
    (staging / "usr" / "sbin").mkdir(parents=True)
    shutil.copy2(binary(), staging / "usr" / "sbin" / "secretsfs")
    script = assembly_script().replace("/staging/", str(staging) + "/") \
        .replace("out=/rootfs", "out=" + str(rootfs))
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in rootfs.iterdir()) == \
        sorted(["etc", "lib", "lib64", "run", "tmp", "usr", "var"])
    for shell in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash"):
        assert not (rootfs / shell).exists()
    assert (rootfs / "usr/bin/fusermount3").exists()
    passwd = (rootfs / "etc/passwd").read_text().splitlines()
    users = {l.split(":")[0]: l.split(":") for l in passwd}
    assert users["secretsfs"][2] == "65532" and \
        users["secretsfs"][6] == "/usr/sbin/nologin"

    # A container has /proc, and the sanitizer build needs it at exit.
    (rootfs / "proc").mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")],
                   check=True)
    try:
        r = subprocess.run(["chroot", str(rootfs), "/usr/sbin/secretsfs",
                            "--version"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0 and r.stdout.startswith("secretsfs "), \
            r.stdout + r.stderr
        r = subprocess.run(["chroot", str(rootfs), "/usr/bin/fusermount3", "-V"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        # The config is read, and a group name resolves from the image's
        # /etc/group (glibc's built-in files NSS module).
        os.makedirs(rootfs / "etc/secretsfs/dev", mode=0o700, exist_ok=True)
        (rootfs / "etc/secretsfs/secretsfs.json").write_text(
            '{"backends": {"dev": {"type": "file", "dir": "/etc/secretsfs/dev"}},'
            ' "secrets": {"db_password": {"backend": "dev", "gid": "secretsfs"}}}')
        os.chmod(rootfs / "etc/secretsfs/secretsfs.json", 0o600)
        r = subprocess.run(["chroot", str(rootfs), "/usr/sbin/secretsfs",
                            "check-config", "--document",
                            "/etc/secretsfs/secretsfs.json"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        subprocess.run(["umount", "-l", str(rootfs / "proc")], check=False)


# ---- Compose ----------------------------------------------------------------

def secretish_env(env):
    """Environment names that look like they carry a secret value."""
    names = env.keys() if isinstance(env, dict) else \
        [e.split("=", 1)[0] for e in env]
    return [n for n in names if re.search(r"PASSWORD|SECRET|TOKEN|KEY", n)
            and not n.endswith("_FILE")]


def test_compose_broker_hardening():
    c = yaml.safe_load(COMPOSE.read_text())
    b = c["services"]["secretsfs"]
    assert b["devices"] == ["/dev/fuse:/dev/fuse"]
    assert b["cap_drop"] == ["ALL"]
    assert "SYS_ADMIN" in b["cap_add"]
    assert set(b["cap_add"]) == {c[4:] for c in CAPS}
    assert "apparmor=secretsfs" in b["security_opt"]
    assert "no-new-privileges:true" in b["security_opt"]
    assert b["pid"] == "host"
    assert b["read_only"] is True
    assert b["restart"] == "always"
    assert b["ulimits"]["core"] == 0
    assert b["ulimits"]["memlock"] >= (locked_mib() + 16) * (1 << 20)
    # The mountpoint's parent directory, which a dead mount cannot make
    # unusable as a volume source (issue 20).
    mount = [v for v in b["volumes"] if isinstance(v, dict)
             and v["target"] == "/run/secretsfs.d"]
    assert len(mount) == 1
    assert mount[0]["source"] == "/run/secretsfs.d"
    assert mount[0]["bind"]["propagation"] == "rshared"
    assert b["healthcheck"]["test"][:3] == ["CMD", "/usr/sbin/secretsfs",
                                           "health"]
    assert not any("docker.sock" in str(v) for v in b["volumes"])
    # Read-only root: the control socket needs a writable /run.
    assert [t.split(":")[0] for t in b["tmpfs"]] == ["/run"]
    assert b["networks"] == ["secrets-egress"]


def test_compose_payment_service_hardening():
    c = yaml.safe_load(COMPOSE.read_text())
    for name in ("payment-api", "web"):
        p = c["services"][name]
        assert p["read_only"] is True, name
        assert p["cap_drop"] == ["ALL"], name
        assert "cap_add" not in p and "privileged" not in p, name
        assert p["security_opt"] == ["no-new-privileges:true"], name
        uid = str(p["user"]).split(":")[0]
        assert uid.isdigit() and int(uid) >= 1000, name
        limits = p["deploy"]["resources"]["limits"]
        assert {"cpus", "memory", "pids"} <= set(limits), name
        binds = [v for v in p["volumes"] if isinstance(v, dict)
                 and v["target"] == "/run/secrets"]
        assert len(binds) == 1, name
        assert binds[0]["source"] == "/run/secretsfs.d/mnt"
        assert binds[0]["read_only"] is True
        assert binds[0]["bind"]["propagation"] == "rslave"
        assert secretish_env(p.get("environment", {})) == [], name
    pay = c["services"]["payment-api"]
    assert pay["depends_on"]["secretsfs"]["condition"] == "service_healthy"
    assert set(pay["networks"]) == {"internal", "sensitive"}
    assert "ports" not in pay
    assert set(c["services"]["web"]["networks"]) == {"public", "internal"}


def test_compose_networks_are_segmented():
    c = yaml.safe_load(COMPOSE.read_text())
    nets = c["networks"]
    assert nets["internal"]["internal"] is True
    assert nets["sensitive"]["internal"] is True
    assert not (nets["public"] or {}).get("internal")
    # Only the web tier is published; the sensitive network has no route
    # out and nothing published.
    for name, svc in c["services"].items():
        if "sensitive" in svc.get("networks", []):
            assert "ports" not in svc, name


# ---- Kubernetes -------------------------------------------------------------

def k8s_docs():
    docs = []
    for f in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def k8s(kind, name):
    found = [d for d in k8s_docs() if d["kind"] == kind
             and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_kubernetes_daemonset_hardening():
    ds = k8s("DaemonSet", "secretsfs")
    pod = ds["spec"]["template"]
    spec = pod["spec"]
    assert pod["metadata"]["annotations"][
        "container.apparmor.security.beta.kubernetes.io/secretsfs"] == \
        "localhost/secretsfs"
    assert spec["hostPID"] is True
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "secretsfs"
    assert "hostNetwork" not in spec and "hostIPC" not in spec
    (c,) = spec["containers"]
    assert DIGEST.search(c["image"]), c["image"]
    assert c["args"] == ["mount", "-f", "-c", "/etc/secretsfs/secretsfs.json"]
    sc = c["securityContext"]
    assert sc["privileged"] is True         # Bidirectional requires it
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert {"limits", "requests"} <= set(c["resources"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["exec"]["command"][:2] == ["/usr/sbin/secretsfs",
                                                    "health"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert mounts["mount"]["mountPath"] == "/run/secretsfs"
    assert mounts["mount"]["mountPropagation"] == "Bidirectional"
    assert vols["mount"]["hostPath"]["path"] == "/run/secretsfs"
    assert mounts["config"]["readOnly"] is True
    assert vols["fuse"]["hostPath"] == {"path": "/dev/fuse",
                                        "type": "CharDevice"}
    token = vols["vault-token"]["projected"]["sources"][0][
        "serviceAccountToken"]
    assert token["audience"] == "vault" and token["expirationSeconds"] <= 3600
    # Only the Bidirectional mount is writable besides the audit trail.
    writable = {m["name"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"mount", "audit", "fuse", "run"}
    assert vols["run"]["emptyDir"]["medium"] == "Memory"


def test_kubernetes_rbac():
    sa = k8s("ServiceAccount", "secretsfs")
    assert sa["metadata"]["namespace"] == "secretsfs-system"
    assert sa["automountServiceAccountToken"] is False
    roles = [d for d in k8s_docs() if d["kind"] in ("Role", "ClusterRole")]
    assert roles == [], "the broker reads nothing from the API"
    (binding,) = [d for d in k8s_docs() if d["kind"].endswith("RoleBinding")]
    assert binding["roleRef"]["name"] == "system:auth-delegator"
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": "secretsfs",
                                    "namespace": "secretsfs-system"}]


def test_kubernetes_payment_pod_hardening():
    pod = k8s("Pod", "payment-api")
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 1000
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert "hostPID" not in spec and "hostNetwork" not in spec
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])
    (m,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/run/secrets"]
    assert m["readOnly"] is True
    assert m["mountPropagation"] == "HostToContainer"
    (v,) = [v for v in spec["volumes"] if v["name"] == m["name"]]
    assert v["hostPath"]["path"] == "/run/secretsfs"
    assert secretish_env({e["name"]: e for e in c.get("env", [])}) == []
    ns = k8s("Namespace", pod["metadata"]["namespace"])
    assert ns["metadata"]["labels"][
        "pod-security.kubernetes.io/audit"] == "restricted"


# ---- PCI DSS mapping --------------------------------------------------------

def test_pci_dss_mapping_names_real_tests():
    text = (DEPLOY / "PCI-DSS.md").read_text()
    for req in ("2", "3", "3.5", "3.6", "7", "8", "10", "11"):
        assert re.search(r"^\|\s*%s[\s.|]" % re.escape(req), text, re.M) or \
            re.search(r"^#+ .*Requirement %s\b" % re.escape(req), text, re.M), req
    refs = re.findall(r"`(tests/[\w/]+\.(?:py|c))::(\w+)`", text)
    assert len(refs) >= 20, refs
    for path, name in refs:
        src = (ROOT / path).read_text()
        pat = r"^def %s\(" % name if path.endswith(".py") else \
            r"^%s\(void \*\*state\)" % name
        assert re.search(pat, src, re.M), "%s::%s does not exist" % (path, name)
