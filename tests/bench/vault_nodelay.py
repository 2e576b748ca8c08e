#!/usr/bin/python3
"""The project's Vault fake (tests/fakes/vault_server.py), with Nagle's algorithm off.

As shipped, the fake writes an answer's headers and body in two writes on a
socket without TCP_NODELAY: on a keep-alive connection the body then waits for
the client's delayed ACK, and every request takes about 40 ms. Real Vault (Go)
sets TCP_NODELAY. The cold-read benchmark starts the fake through this file so
that both sides of its comparison pay the fake's real work, not that timer.
Same command line as vault_server.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import vault_server  # noqa: E402

vault_server.Handler.disable_nagle_algorithm = True

if __name__ == "__main__":
    vault_server.main()
