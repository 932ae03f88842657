#!/usr/bin/python3
"""tls_peer.py - a STARTTLS SMTP receiver built on OpenSSL (Python's ssl
module) whose TLS version range is fixed by the test, for what the bundled
sink cannot do: a server offering only TLS 1.0/1.1 (OpenSSL 3 needs
@SECLEVEL=0 for that), or only TLS 1.2.

  tls_peer.py --port-file F --cert C --key K --store DIR --log L
              [--min-tls 1.0|1.1|1.2|1.3] [--max-tls ...] [--duration S]

Mail is accepted only after STARTTLS (530 before).  Each accepted message
is written as DIR/N.eml (payload, dot-unstuffed, CRLF) and DIR/N.env
(one "rcpt=ADDR" line per recipient).  Each TLS handshake appends one JSON
line to --log: {"version": "TLSv1.2", "resumed": true} or {"error": "..."}.
The server is multi-threaded (session resumption works across its
connections: one SSLContext) and stops by itself after --duration seconds.
"""
import argparse
import json
import os
import socket
import socketserver
import ssl
import threading
import time
import warnings

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--min-tls", default="1.2", choices=VERSIONS)
    ap.add_argument("--max-tls", default="1.3", choices=VERSIONS)
    ap.add_argument("--duration", type=float, default=120)
    args = ap.parse_args()

    # TLS 1.0/1.1 are deprecated: that is the point of offering them here
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if VERSIONS[args.min_tls] < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3 refuses TLS < 1.2 at the default security level
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = VERSIONS[args.min_tls]
    ctx.maximum_version = VERSIONS[args.max_tls]
    ctx.load_cert_chain(args.cert, args.key)
    os.makedirs(args.store, exist_ok=True)
    lock = threading.Lock()
    counter = [0]
    logf = open(args.log, "a", buffering=1)

    def log(obj):
        with lock:
            logf.write(json.dumps(obj) + "\n")

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, text):
            self.out.write(text.encode() + b"\r\n")
            self.out.flush()

        def handle(self):
            self.out = self.wfile
            rd = self.rfile
            tls = False
            rcpts = []
            self.reply("220 tls-peer ESMTP")
            while True:
                line = rd.readline(4096)
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    if tls:
                        self.reply("250-tls-peer\r\n250 PIPELINING")
                    else:
                        self.reply("250-tls-peer\r\n250-PIPELINING\r\n250 STARTTLS")
                elif verb == "STARTTLS" and not tls:
                    self.reply("220 go ahead")
                    try:
                        s = ctx.wrap_socket(self.request, server_side=True)
                    except (ssl.SSLError, OSError) as e:
                        log({"error": str(e)})
                        return
                    log({"version": s.version(), "resumed": s.session_reused})
                    self.request = s
                    rd = s.makefile("rb")
                    self.out = s.makefile("wb")
                    tls = True
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                elif not tls:
                    self.reply("530 5.7.0 must issue STARTTLS first")
                elif verb == "MAIL":
                    rcpts = []
                    self.reply("250 ok")
                elif verb == "RCPT":
                    rcpts.append(cmd.split(":", 1)[-1].strip().strip("<>"))
                    self.reply("250 ok")
                elif verb == "RSET" or verb == "NOOP":
                    rcpts = []
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 go")
                    body = []
                    while True:
                        d = rd.readline(1 << 20)
                        if not d:
                            return
                        if d in (b".\r\n", b".\n"):
                            break
                        if d.startswith(b"."):
                            d = d[1:]
                        body.append(d)
                    with lock:
                        counter[0] += 1
                        n = counter[0]
                    base = os.path.join(args.store, str(n))
                    with open(base + ".eml", "wb") as f:
                        f.write(b"".join(body))
                    with open(base + ".env", "w") as f:
                        f.writelines("rcpt=%s\n" % r for r in rcpts)
                    self.reply("250 2.0.0 queued as %d" % n)
                else:
                    self.reply("502 5.5.2 unknown command")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    time.sleep(args.duration)
    srv.shutdown()


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, socket.error):
        pass
