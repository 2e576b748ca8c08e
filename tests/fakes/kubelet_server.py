#!/usr/bin/python3
"""A fake kubelet: the authenticated read API's GET /pods, over TLS.

What it copies from the real kubelet (kubernetes pkg/kubelet/server):

- TLS only on the secure port, with a serving certificate of its own CA
  (the kubelet's self-signed or cluster-signed serving certificate).
- Authentication (server.go InstallAuthFilter): a request without a bearer
  token, or with one the TokenReview does not accept, is answered
  `401 Unauthorized` with the body "Unauthorized" (http.Error); the kubelet
  runs with --anonymous-auth=false as every hardened node does.
- Authorization (auth.go GetRequestAttributes): verb from the method (GET
  is "get"), resource "nodes", name the node's name, subresource "proxy"
  for every path that is not /stats, /metrics, /logs or /spec; with the
  KubeletFineGrainedAuthz feature (beta and on by default since 1.33, GA in
  1.36), /pods and /runningPods are first checked as subresource "pods"
  (/healthz "healthz", /configz "configz") and fall back to "proxy", and
  /checkpoint is "checkpoint" alone. A denied request is answered 403 with the body
  "Forbidden (user=U, verb=get, resource=nodes, subresource(s)=[S...])".
  The SubjectAccessReview is played by --grants: token -> list of
  "nodes/SUB" the token's user may get.
- GET /pods: a v1 PodList of the pods bound to this node, {"kind":
  "PodList", "apiVersion": "v1", "metadata": {}, "items": [...]}, each item
  a core/v1 Pod (metadata, spec, status), as the kubelet's pod manager
  holds them (its static pods included). Only GET and HEAD; others 405.
- Unknown paths: 404 "404 page not found" (the Go mux).

State: the pods come from --pods-file (JSON list of Pod objects), re-read
on every request when it changes, so a test adds or removes a pod by
rewriting the file. The fake also serves, to the test only and without
auth, GET /_fake/stats ({"pods_requests": N, "unauthorized": N,
"forbidden": N}) and POST /_fake/reset. Uses only the standard library.
"""

import argparse
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SPECIAL = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"),
           ("/spec", "spec"))
# KubeletFineGrainedAuthz: its own subresource, then nodes/proxy again
# (a role that still has proxy keeps working); /checkpoint has no fallback.
FINE = (("/pods", "pods"), ("/runningPods", "pods"), ("/healthz", "healthz"),
        ("/configz", "configz"))


def under(path, prefix):
    return path == prefix or path.startswith(prefix + "/")


def subresources(path, fine_grained):
    """What the kubelet's authorizer asks about for path, in order."""
    for prefix, sub in SPECIAL:
        if under(path, prefix):
            return [sub]
    if fine_grained:
        if under(path, "/checkpoint"):
            return ["checkpoint"]
        for prefix, sub in FINE:
            if under(path, prefix):
                return [sub, "proxy"]
    return ["proxy"]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stats = {"pods_requests": 0, "unauthorized": 0, "forbidden": 0}
        self.tokens = {}        # token -> (user, set of subresources)
        with open(args.tokens) as f:
            for tok, ent in json.load(f).items():
                self.tokens[tok] = (ent["user"], set(ent.get("grants", [])))
        self._pods_mtime = None
        self._pods = []

    def pods(self):
        st = os.stat(self.args.pods_file)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self.lock:
            if key != self._pods_mtime:
                with open(self.args.pods_file) as f:
                    self._pods = json.load(f)
                self._pods_mtime = key
            return self._pods

    def count(self, what):
        with self.lock:
            self.stats[what] += 1


class Handler(BaseHTTPRequestHandler):
    server_version = "kubelet"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if not self.server.state.args.quiet:
            sys.stderr.write("kubelet: " + (fmt % a) + "\n")

    def _send(self, code, body, ctype="text/plain; charset=utf-8"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _authenticate(self):
        h = self.headers.get("Authorization", "")
        # bearertoken.Authenticator: "Bearer" then one space, case-insensitive.
        parts = h.split(" ")
        if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
            return None
        ent = self.server.state.tokens.get(parts[1])
        return ent

    def _fake(self):
        st = self.server.state
        if self.path == "/_fake/stats" and self.command == "GET":
            with st.lock:
                body = json.dumps(st.stats)
            return self._send(200, body, "application/json")
        if self.path == "/_fake/reset" and self.command == "POST":
            with st.lock:
                for k in st.stats:
                    st.stats[k] = 0
            return self._send(200, "{}", "application/json")
        return self._send(404, "404 page not found\n")

    def _serve(self):
        st = self.server.state
        path = self.path.split("?", 1)[0]
        if path.startswith("/_fake/"):
            return self._fake()
        ent = self._authenticate()
        if ent is None:
            st.count("unauthorized")
            return self._send(401, "Unauthorized\n")
        user, grants = ent
        verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}.get(self.command, "")
        subs = subresources(path, st.args.fine_grained)
        if not any(verb == "get" and s in grants for s in subs):
            st.count("forbidden")
            return self._send(403, "Forbidden (user=%s, verb=%s, resource=nodes, "
                              "subresource(s)=[%s])\n" % (user, verb, " ".join(subs)))
        if path != "/pods" and path != "/pods/":
            return self._send(404, "404 page not found\n")
        if self.command not in ("GET", "HEAD"):
            return self._send(405, "Method Not Allowed\n")
        st.count("pods_requests")
        doc = {"kind": "PodList", "apiVersion": "v1", "metadata": {},
               "items": st.pods()}
        return self._send(200, json.dumps(doc), "application/json")

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_GET(self):
        self._serve()

    def do_HEAD(self):
        self._serve()

    def do_POST(self):
        self._drain()
        self._serve()

    def do_PUT(self):
        self._drain()
        self._serve()

    def do_DELETE(self):
        self._serve()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--tokens", required=True,
                   help='JSON {TOKEN: {"user": U, "grants": ["proxy", ...]}}')
    p.add_argument("--pods-file", required=True)
    p.add_argument("--no-fine-grained", dest="fine_grained",
                   action="store_false",
                   help="authorize /pods as nodes/proxy only (before 1.33)")
    p.add_argument("--ready-file")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    srv = ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": srv.server_address[1], "pid": os.getpid()}, f)
        os.replace(tmp, args.ready_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
