"""Run a daemon with a listening UNIX socket passed the systemd way (fd 3, LISTEN_FDS/LISTEN_PID).

usage: socket-activate.py SOCKET_PATH PROGRAM [ARGS...]

pcscd always serves /run/pcscd/pcscd.comm unless it is socket-activated; this gives each lab
run its own socket, which clients select with PCSCLITE_CSOCK_NAME. The program replaces this
process (exec), so the PID the caller saw is the daemon's PID.
"""

import os
import socket
import sys

LISTEN_FD = 3


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, argv = sys.argv[1], sys.argv[2:]
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    if listener.fileno() != LISTEN_FD:
        os.dup2(listener.fileno(), LISTEN_FD)  # dup2 makes the copy inheritable
    else:
        os.set_inheritable(LISTEN_FD, True)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
