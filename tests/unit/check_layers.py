#!/usr/bin/env python3
"""The layering of the tree, as a test: check_layers.py SOURCE_ROOT

Each folder of broker/ is a layer, lowest first (the order of broker/meson.build),
and fuse/ sits on top of them all. A public header include/secretsfs/NAME.h
belongs to the layer of the folder holding NAME.c (or NAME_*.c). Fails, naming
file and line, on:

  - an include of a header of a higher layer (a layer uses only those below);
  - <curl/...> outside broker/backends/ (the HTTP layer and the backends);
  - <fuse...> outside fuse/ (the libfuse adapter);
  - a "NAME_int.h" that is not beside the file including it;
  - a header that belongs to no folder;
  - an include cycle between modules (NAME.h, NAME.c and NAME_*.c are one);
  - a source file over MAX_LINES lines.

Exit 0 when the tree is clean, 1 with one line per problem otherwise.
"""
import os
import re
import sys

LAYERS = ["base", "backends", "access", "audit", "config", "core", "ops",
          "proc", "fuse"]
MAX_LINES = 900
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def folder_of(root, path):
    """The layer of a source file, or None for a file outside the layers."""
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "fuse":
        return "fuse"
    if rel[0] == "broker" and len(rel) > 2 and rel[1] in LAYERS:
        return rel[1]
    return None


def sources(root):
    for top in ("broker", "fuse"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.join(d, f)


def module_of(name, headers):
    """NAME.c, NAME.h and NAME_*.c are one module, unless NAME_x has a header
    of its own (aws_creds is not part of aws)."""
    stem = name[:-2]
    if stem.endswith("_int"):
        stem = stem[:-4]
    best = stem
    while "_" in best and best not in headers:
        best = best.rsplit("_", 1)[0]
    return best if best in headers else stem


def check(root):
    problems = []
    incdir = os.path.join(root, "include", "secretsfs")
    headers = {f[:-2] for f in os.listdir(incdir) if f.endswith(".h")}
    srcs = list(sources(root))

    # Where each header lives: the folder of its module's sources.
    home = {}
    for p in srcs:
        layer = folder_of(root, p)
        if layer is None or not p.endswith(".c"):
            continue
        mod = module_of(os.path.basename(p), headers)
        if mod in headers:
            prev = home.setdefault(mod, layer)
            if prev != layer:
                problems.append("%s: module %s has sources in both %s/ "
                                "and %s/" % (os.path.relpath(p, root), mod,
                                             prev, layer))
    for h in sorted(headers):
        if h not in home:
            problems.append("include/secretsfs/%s.h: no %s.c in any layer's "
                            "folder, so it belongs to no layer" % (h, h))

    files = [(p, folder_of(root, p)) for p in srcs]
    files += [(os.path.join(incdir, h + ".h"), home.get(h))
              for h in sorted(headers)]
    edges = {}
    for path, layer in files:
        rel = os.path.relpath(path, root)
        if layer is None:
            problems.append("%s: not in a layer's folder" % rel)
            continue
        rank = LAYERS.index(layer)
        mod = module_of(os.path.basename(path), headers)
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        if len(lines) > MAX_LINES and path.endswith(".c"):
            problems.append("%s: %d lines, over %d: split it along its "
                            "banners" % (rel, len(lines), MAX_LINES))
        for n, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            quote, target = m.groups()
            where = "%s:%d" % (rel, n)
            if target.startswith("curl/") and layer != "backends":
                problems.append("%s: <%s> outside broker/backends/ (only the "
                                "HTTP layer and the backends use libcurl)"
                                % (where, target))
            if target.startswith("fuse") and layer != "fuse":
                problems.append("%s: <%s> outside fuse/ (only the adapter "
                                "uses libfuse)" % (where, target))
            if quote == '"':
                if not os.path.exists(os.path.join(os.path.dirname(path),
                                                   target)):
                    problems.append('%s: "%s" is not beside it' %
                                    (where, target))
                continue
            if not target.startswith("secretsfs/"):
                continue
            dep = target[len("secretsfs/"):-2]
            if dep not in home:
                continue        # reported above, or not ours
            if LAYERS.index(home[dep]) > rank:
                problems.append("%s: includes %s of %s/, a layer above %s/"
                                % (where, target, home[dep], layer))
            if dep != mod:
                edges.setdefault(mod, {}).setdefault(dep, where)

    problems += cycles(edges)
    return problems


def cycles(edges):
    """One line per include cycle between modules, each reported once."""
    out, seen, state = [], set(), {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, {})):
            if state.get(d) == 1:
                cyc = stack[stack.index(d):] + [d]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    hops = ", ".join("%s -> %s (%s)" % (a, b, edges[a][b])
                                     for a, b in zip(cyc, cyc[1:]))
                    out.append("include cycle: " + hops)
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    return out


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: check_layers.py SOURCE_ROOT\n")
        return 2
    problems = check(sys.argv[1])
    for p in problems:
        print("check_layers: " + p)
    if not problems:
        print("check_layers: %d layers, no upward include, no cycle" %
              len(LAYERS))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
