"""deploy/kubernetes/ against the real Kubernetes OpenAPI schemas, offline,
with the npm package kubernetes-models (each object validated by the model
of its apiVersion and kind), and what a schema cannot see: the kubelet RBAC
grants exactly what the kubelet's authorizer asks for /pods, the tokens'
audiences are those the docs give, the AppArmor profile allows every path
the DaemonSet mounts, the config's kubelet paths are the mounted ones.

kubernetes-models is installed with npm into tests/.k8s-models/ (ignored by
git) at the first run. Without npm or its registry the test skips, and
under CI=true it fails.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, need

sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from kubelet_server import subresources  # noqa: E402

K8S = ROOT / "deploy" / "kubernetes"
PROFILE = ROOT / "deploy" / "apparmor" / "secretsfs"
README = ROOT / "README.md"
MODELS = ROOT / "tests" / ".k8s-models"
MODELS_VERSION = "4.5.1"     # node >= 14: Debian's nodejs runs it

VALIDATE = r"""
import { readFileSync } from "node:fs";
const docs = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const d of docs) {
  const [group, version] = d.apiVersion.includes("/")
    ? d.apiVersion.split("/") : [null, d.apiVersion];
  const mod = "kubernetes-models/" + (group ? group + "/" : "") + version
    + "/" + d.kind;
  let r = { kind: d.kind, name: (d.metadata || {}).name, ok: true };
  try {
    const M = (await import(mod))[d.kind];
    if (typeof M !== "function") throw new Error("no model " + mod);
    new M(d).validate();
  } catch (e) {
    r.ok = false;
    r.error = String(e.message || e).slice(0, 2000);
  }
  out.push(r);
}
process.stdout.write(JSON.stringify(out));
"""


def docs_of(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_docs():
    files = sorted(K8S.rglob("*.yaml"))
    assert files
    return [(f, d) for f in files for d in docs_of(f)]


def find(kind, name):
    found = [d for _, d in all_docs() if d["kind"] == kind
             and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


@pytest.fixture(scope="module")
def models():
    need(shutil.which("node") and shutil.which("npm"),
         "node and npm are not installed (apt-get install nodejs npm)")
    pkg = MODELS / "node_modules" / "kubernetes-models" / "package.json"
    if not pkg.exists() or \
            json.loads(pkg.read_text())["version"] != MODELS_VERSION:
        MODELS.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["npm", "install", "--prefix", str(MODELS),
                            "--no-audit", "--no-fund", "--no-save",
                            "kubernetes-models@" + MODELS_VERSION],
                           capture_output=True, text=True, timeout=600)
        need(r.returncode == 0, "npm install kubernetes-models failed "
             "(registry unreachable?): " + r.stderr[-500:])
    script = MODELS / "validate.mjs"
    script.write_text(VALIDATE)
    return script


def validate(script, docs):
    r = subprocess.run(["node", str(script)], input=json.dumps(docs),
                       capture_output=True, text=True, timeout=120,
                       cwd=str(MODELS))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_every_object_validates_against_the_schemas(models):
    docs = [d for _, d in all_docs()]
    kinds = {d["kind"] for d in docs}
    assert {"DaemonSet", "ServiceAccount", "ClusterRole",
            "ClusterRoleBinding", "Namespace", "Pod"} <= kinds
    results = validate(models, docs)
    assert len(results) == len(docs)
    bad = [r for r in results if not r["ok"]]
    assert bad == [], bad


def test_the_validator_refuses_a_broken_object(models):
    # A live validator, not one that passes anything: a container list
    # that is a string, a DaemonSet without its selector, a rule without
    # verbs, an env var without a name.
    ds = find("DaemonSet", "secretsfs")
    broken = json.loads(json.dumps(ds))
    broken["spec"]["template"]["spec"]["containers"] = "secretsfs"
    no_selector = json.loads(json.dumps(ds))
    del no_selector["spec"]["selector"]
    no_name = json.loads(json.dumps(ds))
    del no_name["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"]
    role = json.loads(json.dumps(find("ClusterRole",
                                      "secretsfs-kubelet-pods")))
    del role["rules"][0]["verbs"]
    results = validate(models, [broken, no_selector, no_name, role])
    assert [r["ok"] for r in results] == [False] * 4, results
    assert "containers" in results[0]["error"]
    assert "selector" in results[1]["error"]
    assert "name" in results[2]["error"]
    assert "verbs" in results[3]["error"]


def test_kubelet_rbac_grants_what_the_authorizer_asks():
    role = find("ClusterRole", "secretsfs-kubelet-pods")
    # The kubelet's authorizer (kubelet_server.subresources, from
    # pkg/kubelet/server/auth.go) asks "get" on nodes/<sub> for GET /pods;
    # without fine-grained authorization that is nodes/proxy alone.
    asked = {"nodes/" + s for s in subresources("/pods", False)}
    assert asked == {"nodes/proxy"}
    (rule,) = role["rules"]
    assert rule["apiGroups"] == [""]
    assert rule["verbs"] == ["get"]
    # Exactly that, and the node object SPIRE's attestor reads too.
    assert set(rule["resources"]) == asked | {"nodes"}
    assert "resourceNames" not in rule
    assert not any(k in rule for k in ("nonResourceURLs",))
    binding = find("ClusterRoleBinding", "secretsfs-kubelet-pods")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole",
                                  "name": "secretsfs-kubelet-pods"}
    sa = find("ServiceAccount", "secretsfs")
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": sa["metadata"]["name"],
                                    "namespace": sa["metadata"]["namespace"]}]
    ds = find("DaemonSet", "secretsfs")
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == \
        sa["metadata"]["name"]
    assert ds["metadata"]["namespace"] == sa["metadata"]["namespace"]


def daemonset_parts():
    ds = find("DaemonSet", "secretsfs")
    spec = ds["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    vols = {v["name"]: v for v in spec["volumes"]}
    return c, {m["name"]: m for m in c["volumeMounts"]}, vols


def test_node_name_and_the_tokens_audiences():
    c, mounts, vols = daemonset_parts()
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "spec.nodeName"}}
    readme = README.read_text()
    # Vault's token: the audience of the Vault role in the README.
    m = re.search(r"vault write auth/kubernetes/role/secretsfs (.*)", readme)
    assert m, "the README shows the Vault role"
    args = dict(a.split("=", 1) for a in m.group(1).split())
    vault = vols["vault-token"]["projected"]["sources"][0][
        "serviceAccountToken"]
    assert vault["audience"] == args["audience"] == "vault"
    assert args["bound_service_account_names"] == "secretsfs"
    assert args["bound_service_account_namespaces"] == "secretsfs-system"
    # The kubelet's: the API server's own audience (none given), as the
    # kubelet's TokenReview asks, and as the README says.
    srcs = vols["kubelet-token"]["projected"]["sources"]
    (tok,) = [s["serviceAccountToken"] for s in srcs
              if "serviceAccountToken" in s]
    assert "audience" not in tok and tok["expirationSeconds"] <= 3600
    assert "projects the token with the API server's own audience (no\n" \
        "`audience`" in readme
    (ca,) = [s["configMap"] for s in srcs if "configMap" in s]
    assert ca["name"] == "kube-root-ca.crt"
    # The README's runtime.kubelet names the files where they are mounted.
    cfg = re.search(r'"runtime": \{"kubelet": \{\s*"token_file": "([^"]+)",'
                    r'\s*"ca_file": "([^"]+)"\}\}', readme)
    assert cfg, "the README's runtime.kubelet example"
    base = mounts["kubelet-token"]["mountPath"]
    assert mounts["kubelet-token"]["readOnly"] is True
    assert cfg.group(1) == base + "/" + tok["path"]
    assert cfg.group(2) == base + "/" + ca["items"][0]["path"]


def apparmor_rules():
    """(regex, perms) of each file rule of the profile."""
    rules = []
    for line in PROFILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^(deny\s+)?(/\S+|@\{PROC\}\S*)\s+([rwklmix]+),$", line)
        if not m:
            continue
        rules.append((glob_re(m.group(2)), m.group(3), bool(m.group(1))))
    return rules


def glob_re(g):
    g = g.replace("@{PROC}", "/proc").replace("@{pid}", "[0-9]*")
    out, i = "", 0
    while i < len(g):
        ch = g[i]
        if g.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "{":
            j = g.index("}", i)
            out += "(?:" + "|".join(re.escape(x)
                                    for x in g[i + 1:j].split(",")) + ")"
            i = j
        elif ch == "?":
            out += "[^/]"
        else:
            out += re.escape(ch)
        i += 1
    return re.compile("^" + out + "$")


def allowed(rules, path, perm):
    hit = [r for r in rules if r[0].match(path) and perm in r[1]]
    return bool(hit) and not any(r[2] for r in hit)


def test_apparmor_allows_every_path_the_daemonset_mounts():
    c, mounts, vols = daemonset_parts()
    rules = apparmor_rules()
    assert rules
    for name, m in mounts.items():
        path = m["mountPath"]
        need_w = not m.get("readOnly")
        if "hostPath" in vols[name] and \
                vols[name]["hostPath"].get("type") == "CharDevice":
            assert allowed(rules, path, "r") and allowed(rules, path, "w"), \
                path
            continue
        if name == "run":
            # The control socket only, not all of /run.
            assert allowed(rules, "/run/secretsfs.sock", "w")
            continue
        assert allowed(rules, path + "/", "r"), path
        if name == "mount":
            continue        # a mountpoint: FUSE serves what is inside
        inside = path + "/some/file"
        assert allowed(rules, inside, "r"), inside
        if need_w:
            assert allowed(rules, inside, "w"), inside
        # The kernel resolves /var/run to /run: both spellings hold.
        if path.startswith("/var/run/"):
            assert allowed(rules, path[4:] + "/some/file", "r"), path
    # And the profile refuses what it should (the check is not vacuous).
    assert not allowed(rules, "/var/run/secrets/kubernetes.io/x", "r")
    assert not allowed(rules, "/etc/secretsfs/x", "w")
