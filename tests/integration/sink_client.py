#!/usr/bin/python3
"""sink_client.py CHECK PORT CERTDIR [STORE] - one behaviour check of the
sealpost-bench sink, driven by a real client (smtplib, ssl, raw sockets).

Used by sink_behaviour.sh.  Prints what failed and exits 1; exits 0 on
success.  Every socket has a timeout, so a hung sink fails the check
instead of hanging the test.
"""
import os
import smtplib
import socket
import ssl
import sys
import time

T = 10  # seconds, every socket


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def tls_ctx(certdir, client=False):
    ctx = ssl.create_default_context(cafile=os.path.join(certdir, "ca.pem"))
    if client:
        ctx.load_cert_chain(os.path.join(certdir, "client.pem"),
                            os.path.join(certdir, "client.key"))
    return ctx


def smtp(port):
    return smtplib.SMTP("127.0.0.1", port, timeout=T)


def raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    return s


def read_replies(s, n):
    """read until n complete replies (multi-line counted once) arrived"""
    buf = b""
    while True:
        lines = buf.split(b"\r\n")
        done = [l for l in lines[:-1] if len(l) >= 4 and l[3:4] == b" "]
        if len(done) >= n:
            return [l.decode() for l in lines[:-1]]
        chunk = s.recv(65536)
        if not chunk:
            return [l.decode() for l in lines[:-1]] + ["<closed>"]
        buf += chunk


# --- checks ----------------------------------------------------------------

def starttls_required(port, certdir, store):
    s = smtp(port)
    code, caps = s.ehlo("client.test")
    expect(code == 250 and b"STARTTLS" in caps, "EHLO before TLS must offer STARTTLS: %r" % caps)
    code, msg = s.docmd("MAIL FROM:<a@client.test>")
    expect(code == 530 and msg.startswith(b"5.7.0 Must issue a STARTTLS command first"),
           "MAIL before STARTTLS: want 530 5.7.0, got %d %r" % (code, msg))
    code, _ = s.starttls(context=tls_ctx(certdir))
    expect(code == 220, "STARTTLS: %d" % code)
    code, msg = s.docmd("MAIL FROM:<a@client.test>")
    expect(code == 503, "MAIL right after the handshake needs a new EHLO: got %d %r" % (code, msg))
    code, caps = s.ehlo("client.test")
    expect(code == 250 and b"STARTTLS" not in caps, "EHLO inside TLS must not offer STARTTLS")
    expect(b"PIPELINING" in caps and b"SIZE" in caps and b"ENHANCEDSTATUSCODES" in caps,
           "EHLO keywords missing: %r" % caps)
    code, msg = s.docmd("STARTTLS")
    expect(code == 503, "second STARTTLS: want 503, got %d" % code)
    refused = s.sendmail("a@client.test", ["b@rcpt.test"], b"Subject: t\r\n\r\nbody\r\n")
    expect(refused == {}, "mail inside TLS refused: %r" % refused)
    s.quit()


def starttls_injection(port, certdir, store):
    # bytes after STARTTLS in the same packet must be dropped (RFC 3207)
    s = raw(port)
    read_replies(s, 1)
    s.sendall(b"EHLO client.test\r\n")
    read_replies(s, 1)
    s.sendall(b"STARTTLS\r\nNOOP\r\n")
    r = read_replies(s, 1)
    expect(r[-1].startswith("220 2.0.0"), "STARTTLS reply: %r" % r)
    t = tls_ctx(certdir).wrap_socket(s, server_hostname="localhost")
    t.sendall(b"EHLO client.test\r\n")
    r = read_replies(t, 1)
    expect(r[0].startswith("250-"), "injected NOOP was answered inside TLS: %r" % r)
    t.sendall(b"QUIT\r\n")
    read_replies(t, 1)
    t.close()


def no_starttls(port, certdir, store):
    s = smtp(port)
    code, caps = s.ehlo("client.test")
    expect(code == 250 and b"STARTTLS" not in caps, "--no-starttls still offers STARTTLS")
    code, msg = s.docmd("STARTTLS")
    expect(code == 502, "STARTTLS when not offered: want 502, got %d" % code)
    refused = s.sendmail("a@client.test", ["b@rcpt.test"], b"Subject: p\r\n\r\nplain\r\n")
    expect(refused == {}, "plaintext mail refused: %r" % refused)
    s.quit()


def rcpt_lists(port, certdir, store):
    s = smtp(port)
    s.ehlo("client.test")
    s.starttls(context=tls_ctx(certdir))
    s.ehlo("client.test")
    code, _ = s.docmd("MAIL FROM:<a@client.test>")
    expect(code == 250, "MAIL: %d" % code)
    code, msg = s.docmd("RCPT TO:<temp@rcpt.test>")
    expect(code == 451 and msg.startswith(b"4.3.0"), "--tempfail-rcpt: got %d %r" % (code, msg))
    code, msg = s.docmd("RCPT TO:<PERM@rcpt.test>")
    expect(code == 550 and msg.startswith(b"5.1.1"), "--permfail-rcpt: got %d %r" % (code, msg))
    code, msg = s.docmd("RCPT TO:<fine@rcpt.test>")
    expect(code == 250, "ordinary recipient: got %d %r" % (code, msg))
    code, msg = s.docmd("RSET")
    expect(code == 250, "RSET: %d" % code)
    code, msg = s.docmd("RCPT TO:<fine@rcpt.test>")
    expect(code == 503, "RCPT after RSET without MAIL: want 503, got %d" % code)
    s.quit()


def rcpt_shares(port, certdir, store):
    # --rcpt-tempfail 50: the answer depends on the address only
    answers = {}
    for rnd in range(2):
        s = smtp(port)
        s.ehlo("client.test")
        s.docmd("MAIL FROM:<a@client.test>")
        for i in range(40):
            code, _ = s.docmd("RCPT TO:<user%d@rcpt.test>" % i)
            expect(code in (250, 451), "share: unexpected %d" % code)
            if rnd == 0:
                answers[i] = code
            else:
                expect(answers[i] == code, "user%d answered %d then %d" % (i, answers[i], code))
        s.quit()
    n451 = sum(1 for c in answers.values() if c == 451)
    expect(5 <= n451 <= 35, "--rcpt-tempfail 50 gave %d/40 tempfails" % n451)


def client_cert(port, certdir, store):
    s = smtp(port)
    s.ehlo("client.test")
    try:
        s.starttls(context=tls_ctx(certdir))
        # TLS 1.3: the server's verdict on the client certificate comes
        # after the client's Finished; the next exchange shows it
        s.ehlo("client.test")
        fail("handshake without a client certificate succeeded")
    except (ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError, OSError):
        pass
    s = smtp(port)
    s.ehlo("client.test")
    code, _ = s.starttls(context=tls_ctx(certdir, client=True))
    expect(code == 220, "STARTTLS with client cert: %d" % code)
    s.ehlo("client.test")
    refused = s.sendmail("a@client.test", ["b@rcpt.test"], b"Subject: c\r\n\r\nclient cert\r\n")
    expect(refused == {}, "mail with client certificate refused")
    s.quit()


def drop_mid_data(port, certdir, store):
    s = smtp(port)
    s.ehlo("client.test")
    s.docmd("MAIL FROM:<a@client.test>")
    s.docmd("RCPT TO:<b@rcpt.test>")
    code, _ = s.docmd("DATA")
    expect(code == 354, "DATA: %d" % code)
    try:
        for _ in range(50):
            s.send(b"x" * 4000 + b"\r\n")
            time.sleep(0.01)
        s.send(b".\r\n")
        code, msg = s.getreply()
        fail("the sink answered %d instead of dropping the connection" % code)
    except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
        pass


def max_size(port, certdir, store):
    s = smtp(port)
    code, caps = s.ehlo("client.test")
    expect(b"SIZE 1000" in caps, "EHLO must announce SIZE 1000: %r" % caps)
    code, msg = s.docmd("MAIL FROM:<a@client.test> SIZE=5000")
    expect(code == 552 and msg.startswith(b"5.3.4"), "MAIL SIZE=5000: got %d %r" % (code, msg))
    code, _ = s.docmd("MAIL FROM:<a@client.test>")
    expect(code == 250, "MAIL without SIZE: %d" % code)
    s.docmd("RCPT TO:<b@rcpt.test>")
    code, _ = s.docmd("DATA")
    expect(code == 354, "DATA: %d" % code)
    s.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 50 + b".\r\n")
    code, msg = s.getreply()
    expect(code == 552 and msg.startswith(b"5.3.4"), "oversized DATA: got %d %r" % (code, msg))
    # the session stays usable
    refused = s.sendmail("a@client.test", ["b@rcpt.test"], b"Subject: s\r\n\r\nsmall\r\n")
    expect(refused == {}, "small mail after a refused big one")
    s.quit()


MSG = (b"From: a@client.test\r\nTo: b@rcpt.test\r\nSubject: store\r\n\r\n"
       b".starts with a dot\r\n..two dots\r\n.\r\n.\r\n"
       b"8bit \xc3\xa9\xe2\x82\xac and a lone CR\r in a line\r\n"
       b"\r\n.\r\nlast line\r\n")


def store(port, certdir, store_dir):
    before = set(os.listdir(store_dir))
    s = smtp(port)
    s.ehlo("client.test")
    s.starttls(context=tls_ctx(certdir))
    s.ehlo("client.test")
    refused = s.sendmail("sender@client.test", ["r1@rcpt.test", "r2@rcpt.test"], MSG)
    expect(refused == {}, "store: refused %r" % refused)
    s.quit()
    new = sorted(set(os.listdir(store_dir)) - before)
    eml = [f for f in new if f.endswith(".eml")]
    env = [f for f in new if f.endswith(".env")]
    expect(len(eml) == 1 and len(env) == 1, "store: want one .eml and one .env, got %r" % new)
    with open(os.path.join(store_dir, eml[0]), "rb") as f:
        got = f.read()
    expect(got == MSG, "stored message differs:\n%r\n%r" % (got, MSG))
    with open(os.path.join(store_dir, env[0])) as f:
        e = f.read()
    expect(e.startswith("from=sender@client.test\nrcpt=r1@rcpt.test\nrcpt=r2@rcpt.test\n"),
           "envelope file: %r" % e)
    expect("tls=TLSv1." in e, "envelope file must say the session was in TLS: %r" % e)


def pipelining(port, certdir, store):
    s = raw(port)
    read_replies(s, 1)
    s.sendall(b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
              b"RCPT TO:<b@rcpt.test>\r\nRCPT TO:<c@rcpt.test>\r\nDATA\r\n")
    r = read_replies(s, 5)
    finals = [l for l in r if l[3:4] == " "]
    codes = [l[:3] for l in finals]
    expect(codes == ["250", "250", "250", "250", "354"], "pipelined replies: %r" % r)
    s.sendall(b"Subject: p\r\n\r\npipelined\r\n.\r\nNOOP\r\nQUIT\r\n")
    r = read_replies(s, 3)
    codes = [l[:3] for l in r]
    expect(codes == ["250", "250", "221"], "after DATA: %r" % r)
    expect("queued as" in r[0], "DATA reply: %r" % r[0])
    s.close()


def long_line(port, certdir, store):
    s = raw(port)
    read_replies(s, 1)
    s.sendall(b"NOOP " + b"a" * 5000 + b"\r\nNOOP\r\n")
    r = read_replies(s, 2)
    expect(r[0].startswith("500 5.5.2"), "long line: %r" % r)
    expect(r[1].startswith("250"), "the session must go on after a long line: %r" % r)
    s.sendall(b"QUIT\r\n")
    read_replies(s, 1)
    s.close()


def hostile(port, certdir, store):
    # binary garbage, NULs, bare CRs, no EHLO: answered, then 421 after
    # too many errors; the sink lives on for the next client
    s = raw(port)
    read_replies(s, 1)
    junk = bytes(range(256)) * 4 + b"\x00\r\n" + b"\r\r\r\n" + b"MAIL FROM:<x\r\n"
    s.sendall(junk + b"BAD\r\n" * 40)
    r = read_replies(s, 200)
    expect(r[-1] == "<closed>", "connection must close after many errors: %r" % r[-3:])
    expect(any(l.startswith("421 ") for l in r), "no 421 after many errors: %r" % r[-3:])
    s.close()
    s = raw(port)
    r = read_replies(s, 1)
    expect(r[0].startswith("220"), "sink gone after hostile input: %r" % r)
    s.close()


def latency(port, certdir, store):
    s = raw(port)
    t0 = time.monotonic()
    read_replies(s, 1)
    s.sendall(b"NOOP\r\n")
    read_replies(s, 1)
    el = time.monotonic() - t0
    expect(el >= 0.55, "--latency-ms 300: two replies took %.3f s" % el)
    s.close()


def submitted_header(port, certdir, store):
    # fill's X-Sealpost-Bench-Submitted: (unix us) gives the delivery latency
    then = int(time.time() * 1e6) - 250000
    s = smtp(port)
    s.ehlo("client.test")
    msg = b"Subject: lat\r\nX-Sealpost-Bench-Submitted: %d\r\n\r\nbody\r\n" % then
    refused = s.sendmail("a@client.test", ["b@rcpt.test"], msg)
    expect(refused == {}, "refused")
    s.quit()


def conn_tempfail(port, certdir, store):
    s = raw(port)
    r = read_replies(s, 1)
    expect(r[0].startswith("421 4.3.2"), "--conn-tempfail 100 greeting: %r" % r)
    s.close()


def one_message(port, certdir, store):
    s = smtp(port)
    s.ehlo("client.test")
    refused = s.sendmail("a@client.test", ["b@rcpt.test"], b"Subject: 1\r\n\r\none\r\n")
    expect(refused == {}, "refused")
    try:
        s.quit()
    except smtplib.SMTPServerDisconnected:
        pass


CHECKS = {f.__name__: f for f in (starttls_required, starttls_injection, no_starttls,
                                  rcpt_lists, rcpt_shares, client_cert, drop_mid_data,
                                  max_size, store, pipelining, long_line, hostile,
                                  latency, submitted_header, conn_tempfail, one_message)}

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in CHECKS:
        print("usage: sink_client.py CHECK PORT CERTDIR [STORE]; checks: " + " ".join(CHECKS))
        sys.exit(2)
    try:
        CHECKS[sys.argv[1]](int(sys.argv[2]), sys.argv[3],
                            sys.argv[4] if len(sys.argv) > 4 else None)
    except SystemExit:
        raise
    except Exception as e:  # an unexpected exception is a failed check
        fail("%s: %s: %s" % (sys.argv[1], type(e).__name__, e))
    sys.exit(0)
