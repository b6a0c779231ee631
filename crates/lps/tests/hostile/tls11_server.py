"""A hostile API LPS front for the tests: plain SMTP or IMAP up to STARTTLS, then a TLS handshake limited to
TLS 1.1. Prints the port it listens on, then serves connections until killed; every line received before
TLS is echoed to stderr as `RECV <line>`.

    python3 tls11_server.py smtp|imap CERT KEY
"""
import socket
import ssl
import sys
import threading
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

proto, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
# OpenSSL 3 refuses TLS 1.1 at the default security level
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ssl.TLSVersion.TLSv1_1
ctx.maximum_version = ssl.TLSVersion.TLSv1_1
ctx.load_cert_chain(cert, key)


def serve(conn):
    f = conn.makefile("rb")

    def send(s):
        conn.sendall(s.encode())

    try:
        if proto == "smtp":
            send("220 hostile.test ESMTP\r\n")
        else:
            send("* OK [CAPABILITY IMAP4rev1 STARTTLS SASL-IR AUTH=XOAUTH2] hostile ready\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip("\r\n")
            print("RECV " + text, file=sys.stderr, flush=True)
            if proto == "smtp":
                verb = text.split(" ")[0].upper()
                if verb == "EHLO":
                    send("250-hostile.test\r\n250-STARTTLS\r\n250 AUTH XOAUTH2 PLAIN\r\n")
                elif verb == "STARTTLS":
                    send("220 2.0.0 go ahead\r\n")
                    break
                else:
                    send("502 5.5.2 no\r\n")
            else:
                tag, _, cmd = text.partition(" ")
                cmd = cmd.upper()
                if cmd == "CAPABILITY":
                    send("* CAPABILITY IMAP4rev1 STARTTLS SASL-IR AUTH=XOAUTH2\r\n" + tag + " OK done\r\n")
                elif cmd == "STARTTLS":
                    send(tag + " OK begin TLS\r\n")
                    break
                else:
                    send(tag + " BAD no\r\n")
        tls = ctx.wrap_socket(conn, server_side=True)
        print("TLS " + str(tls.version()), file=sys.stderr, flush=True)
        tls.close()
    except Exception as e:  # the client is expected to abort the handshake
        print("ERR " + type(e).__name__ + ": " + str(e), file=sys.stderr, flush=True)
    finally:
        conn.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
