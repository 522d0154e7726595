#!/usr/bin/env python3
"""One guest TCP connection to the test server: QEMU's `guestfwd=...-cmd:` rule starts this for
each connection the firmware opens to 10.0.2.100:8000. QEMU's network library (libslirp) hands
the connection over as one socket on all of stdin, stdout and stderr. This connects to the
server on the host's loopback (the only address it ever contacts) and copies bytes both ways
until both directions are closed, passing each end's FIN on with a socket shutdown.

Usage: forwarder.py PORT LOG    (connects to 127.0.0.1:PORT; errors are appended to LOG, never
                                 written to the guest's connection)
"""
import os
import selectors
import socket
import sys


def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    # stderr is the guest's connection too: errors go to the log instead.
    os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
    guest = socket.socket(fileno=os.dup(0))
    server = socket.create_connection(("127.0.0.1", port))
    sel = selectors.DefaultSelector()
    sel.register(guest, selectors.EVENT_READ, (guest, server))
    sel.register(server, selectors.EVENT_READ, (server, guest))
    open_ends = 2
    while open_ends:
        for key, _ in sel.select():
            source, sink = key.data
            data = source.recv(65536)
            if data:
                sink.sendall(data)
            else:  # this side is done sending: pass its FIN on
                sel.unregister(source)
                sink.shutdown(socket.SHUT_WR)
                open_ends -= 1
    server.close()
    guest.close()


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, IndexError) as e:
        print(f"forwarder: {e}", file=sys.stderr)
        sys.exit(1)
