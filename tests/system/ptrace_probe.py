"""Start argv as a child and try PTRACE_ATTACH on it; print the outcome.

Run without CAP_SYS_PTRACE (setpriv --bounding-set -sys_ptrace): a parent may
then attach to a dumpable child only, so "attach EPERM" means the child made
itself non-dumpable.
"""
import ctypes
import errno
import os
import subprocess
import sys
import time

PTRACE_ATTACH, PTRACE_DETACH = 16, 17

libc = ctypes.CDLL(None, use_errno=True)
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
time.sleep(1.0)
if libc.ptrace(PTRACE_ATTACH, child.pid, 0, 0) == 0:
    os.waitpid(child.pid, 0)
    libc.ptrace(PTRACE_DETACH, child.pid, 0, 0)
    print("attach ok")
else:
    print("attach " + errno.errorcode.get(ctypes.get_errno(), "?"))
child.terminate()
child.wait()
