#!/usr/bin/env python3
"""One guest TCP connection to the test server: QEMU's `guestfwd=...-cmd:` rule starts this for
each connection the firmware opens to 10.0.2.100:8000, with that connection on stdin/stdout.
It connects to the server on the host's loopback (the only address it ever contacts) and copies
bytes both ways until both directions are closed.

Usage: forwarder.py PORT        (connects to 127.0.0.1:PORT)
"""
import os
import selectors
import socket
import sys


def main():
    port = int(sys.argv[1])
    server = socket.create_connection(("127.0.0.1", port))
    guest_in, guest_out = sys.stdin.fileno(), sys.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(guest_in, selectors.EVENT_READ, "guest")
    sel.register(server, selectors.EVENT_READ, "server")
    open_ends = 2
    while open_ends:
        for key, _ in sel.select():
            if key.data == "guest":
                data = os.read(guest_in, 65536)
                if data:
                    server.sendall(data)
                else:  # the guest closed its side: pass the FIN on
                    sel.unregister(guest_in)
                    server.shutdown(socket.SHUT_WR)
                    open_ends -= 1
            else:
                data = server.recv(65536)
                if data:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(guest_out, view):]
                else:
                    sel.unregister(server)
                    open_ends -= 1
                    os.close(guest_out)  # the FIN to the guest
    server.close()


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, IndexError) as e:
        print(f"forwarder: {e}", file=sys.stderr)
        sys.exit(1)
