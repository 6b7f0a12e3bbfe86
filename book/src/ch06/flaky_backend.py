# A backend that provokes chapter 6's stale-connection race on purpose.
#
# It answers the first request on each connection, keeps the connection
# open, and when the second request arrives it reads it whole and closes
# the connection without a word: what a server does when its idle timeout
# fires at the moment a request is on its way. Every request it reads is
# printed, so you can count what reached it.
#
#     python3 flaky_backend.py 18001
import socket
import socketserver
import sys


class Flaky(socketserver.BaseRequestHandler):
    def handle(self):
        s, buf, n = self.request, b"", 0
        while True:
            while b"\r\n\r\n" not in buf:
                more = s.recv(4096)
                if not more:
                    return
                buf += more
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                buf += s.recv(4096)
            buf = buf[length:]
            n += 1
            method = head.split(b" ")[0].decode()
            print(f"{method} #{n} on connection from port {self.client_address[1]}", flush=True)
            if n == 2:
                s.shutdown(socket.SHUT_RDWR)
                return
            reply = f"{method} #{n} answered\n".encode()
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(reply) + reply)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 18001
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", port), Flaky).serve_forever()
