#!/usr/bin/python3
"""badpeer.py - a scripted SMTP server that misbehaves on purpose, for the
engine's fault tests.  Real TCP on loopback, real TLS (Python's ssl module)
where the mode needs it.  Everything the client sent is appended to the
--log transcript (decrypted after STARTTLS, prefixed "C: "/"C(tls): "), so a
test can prove that nothing of a message left the client in plaintext.

Modes:
  no-ehlo           500 to EHLO (HELO would work): no EHLO means no STARTTLS
  no-starttls       EHLO without STARTTLS; would accept plaintext mail
  starttls-refused  STARTTLS answered 454 4.7.0
  inject            STARTTLS answered "220 ..." plus an injected reply in the same write
  close-after-220   STARTTLS answered 220, then the connection is closed
  stall-greeting    accept and never say anything
  stall-dot         normal TLS session, but no reply to the end of DATA
  garbage           greeting is binary garbage
  long-line         greeting is one 1 MB line
  endless           the EHLO reply is an endless multi-line reply
  trickle           every reply is sent one byte at a time, --trickle-ms apart
  tls-alert         STARTTLS 220, then a TLS handshake failure alert
  good              a well-behaved TLS server (accepts and discards mail)
The server stops by itself after --duration seconds.
"""
import argparse
import socket
import socketserver
import ssl
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--trickle-ms", type=int, default=200)
    args = ap.parse_args()
    lock = threading.Lock()
    logf = open(args.log, "a", buffering=1)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    def log(prefix, data):
        with lock:
            logf.write(prefix + data.decode("latin-1").replace("\r\n", "\n"))
            if not data.endswith(b"\n"):
                logf.write("\n")

    class Handler(socketserver.BaseRequestHandler):
        def setup(self):
            self.sock = self.request
            self.tls = False
            self.buf = b""

        def send(self, data):
            if args.mode == "trickle":
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
                    time.sleep(args.trickle_ms / 1000.0)
            else:
                self.sock.sendall(data)

        def readline(self):
            while b"\n" not in self.buf:
                try:
                    chunk = self.sock.recv(65536)
                except (OSError, ssl.SSLError):
                    return None
                if not chunk:
                    return None
                log("C(tls): " if self.tls else "C: ", chunk)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            return line.rstrip(b"\r")

        def handle(self):
            mode = args.mode
            try:
                self.session(mode)
            except (OSError, ssl.SSLError):
                pass

        def session(self, mode):
            if mode == "stall-greeting":
                time.sleep(args.duration)
                return
            if mode == "garbage":
                self.send(b"\x16\x03\x01\x00\xff\xfe garbage \x00\x01\r\n")
                time.sleep(2)
                return
            if mode == "long-line":
                self.send(b"220 " + b"x" * (1024 * 1024) + b"\r\n")
                time.sleep(2)
                return
            self.send(b"220 badpeer ESMTP\r\n")
            while True:
                line = self.readline()
                if line is None:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    if mode == "no-ehlo" and verb == b"EHLO":
                        self.send(b"500 5.5.1 command unrecognized\r\n")
                        continue
                    if mode == "endless" and not self.tls:
                        while True:
                            self.send(b"250-badpeer endless\r\n")
                    caps = [b"badpeer", b"PIPELINING", b"8BITMIME", b"ENHANCEDSTATUSCODES"]
                    if not self.tls and mode != "no-starttls":
                        caps.append(b"STARTTLS")
                    out = b"".join(b"250-" + c + b"\r\n" for c in caps[:-1])
                    self.send(out + b"250 " + caps[-1] + b"\r\n")
                elif verb == b"STAR":
                    if mode == "starttls-refused":
                        self.send(b"454 4.7.0 TLS not available\r\n")
                        continue
                    if mode == "inject":
                        self.send(b"220 2.0.0 ready\r\n250 2.0.0 injected\r\n")
                        time.sleep(2)
                        return
                    self.send(b"220 2.0.0 ready\r\n")
                    if mode == "close-after-220":
                        return
                    if mode == "tls-alert":
                        # A ServerHello-less fatal alert: handshake_failure.
                        self.sock.recv(65536)
                        self.sock.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
                        return
                    if self.buf:
                        return      # client pipelined past STARTTLS: refuse
                    self.sock = ctx.wrap_socket(self.sock, server_side=True)
                    self.tls = True
                elif verb == b"MAIL":
                    self.send(b"250 2.1.0 ok\r\n")
                elif verb == b"RCPT":
                    self.send(b"250 2.1.5 ok\r\n")
                elif verb == b"DATA":
                    self.send(b"354 go ahead\r\n")
                    while True:
                        l2 = self.readline()
                        if l2 is None:
                            return
                        if l2 == b".":
                            break
                    if mode == "stall-dot":
                        time.sleep(args.duration)
                        return
                    self.send(b"250 2.0.0 accepted\r\n")
                elif verb == b"RSET" or verb == b"NOOP":
                    self.send(b"250 2.0.0 ok\r\n")
                elif verb == b"QUIT":
                    self.send(b"221 2.0.0 bye\r\n")
                    return
                else:
                    self.send(b"502 5.5.2 unknown\r\n")

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.duration, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
