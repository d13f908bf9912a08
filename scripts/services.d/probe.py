#!/usr/bin/env python3
"""Readiness probes used by scripts/services (standard library only).

    probe.py kafka HOST PORT [TIMEOUT]      Kafka Metadata v4 request; ok when a broker is listed
    probe.py cassandra HOST PORT [TIMEOUT]  CQL v4 STARTUP + "SELECT release_version FROM system.local"
    probe.py s3 HOST PORT [TIMEOUT]         S3 ListBuckets (GET /); ok on an XML answer
    probe.py kafka-sasl-ssl HOST PORT TIMEOUT CAFILE USER PASSWORD
                                            the Kafka probe over TLS, after SASL PLAIN authentication
    probe.py cassandra-tls HOST PORT TIMEOUT CAFILE
                                            the Cassandra probe over TLS

The TLS variants verify the server certificate against CAFILE only, including that it is issued
for HOST (for 127.0.0.1: an IP address SAN), as a client such as rustls or librdkafka does.

Prints a one-line summary and exits 0 when the service answered the request, 1 otherwise
(reason on stderr).
"""
import os
import socket
import struct
import sys


def connect(host, port, timeout, cafile=None):
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    if cafile:
        import ssl

        ctx = ssl.create_default_context(cafile=cafile)  # only this CA; checks the name/IP too
        try:
            s = ctx.wrap_socket(s, server_hostname=host)
        except BaseException:
            s.close()
            raise
    return s


def tls_summary(s):
    return "%s %s" % (s.version(), s.cipher()[0]) if hasattr(s, "version") else ""


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return buf


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated response")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string16(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode("utf-8")

    def bytes32(self):
        n = self.i32()
        return None if n < 0 else self.take(n)


# ---------------------------------------------------------------- Kafka

def kafka_call(s, api_key, api_version, corr, body):
    """One non-flexible request (header v1) and its response (header v0, correlation id checked)."""
    client_id = b"borboleta-services-probe"
    req = struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id + body
    s.sendall(struct.pack(">i", len(req)) + req)
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    r = Reader(recv_exact(s, size))
    if r.i32() != corr:
        raise ValueError("correlation id mismatch")
    return r


def kafka_sasl_plain(s, user, password):
    mech = b"PLAIN"
    r = kafka_call(s, 17, 1, 4240, struct.pack(">h", len(mech)) + mech)  # SaslHandshake v1
    err = r.i16()
    if err:
        enabled = [r.string16() for _ in range(r.i32())]
        raise ValueError("SaslHandshake: error %d, broker mechanisms %s" % (err, enabled))
    token = b"\0" + user.encode() + b"\0" + password.encode()
    r = kafka_call(s, 36, 0, 4241, struct.pack(">i", len(token)) + token)  # SaslAuthenticate v0
    err, msg = r.i16(), r.string16()
    if err:
        raise ValueError("SASL PLAIN as %r: error %d: %s" % (user, err, msg))


def kafka(host, port, timeout, cafile=None, user=None, password=None):
    body = struct.pack(">ib", 0, 0)  # topics: empty array (no topics), allow_auto_topic_creation=false
    with connect(host, port, timeout, cafile) as s:
        tls = tls_summary(s)
        if user is not None:
            kafka_sasl_plain(s, user, password)
        r = kafka_call(s, 3, 4, 4242, body)  # Metadata v4 (non-flexible; v0-v3 are gone in 4.x)
    r.i32()  # throttle_time_ms
    brokers = []
    for _ in range(r.i32()):
        node, bhost, bport, _rack = r.i32(), r.string16(), r.i32(), r.string16()
        brokers.append("%d@%s:%d" % (node, bhost, bport))
    cluster_id = r.string16()
    controller = r.i32()
    if not brokers:
        raise ValueError("metadata lists no broker yet")
    out = "brokers=%s cluster_id=%s controller=%d" % (",".join(brokers), cluster_id, controller)
    if user is not None:
        out = "SASL PLAIN as %s, %s" % (user, out)
    return "%s, %s" % (tls, out) if tls else out


# ------------------------------------------------------------ Cassandra

def cql_frame(opcode, body, stream=1):
    return struct.pack(">BBhBi", 0x04, 0, stream, opcode, len(body)) + body


def cql_read(sock):
    version, _flags, _stream, opcode, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
    if version != 0x84:
        raise ValueError("unexpected CQL response version 0x%02x" % version)
    return opcode, Reader(recv_exact(sock, length))


def cql_check_error(opcode, r, what):
    if opcode == 0x00:
        code = r.i32()
        raise ValueError("%s: CQL error 0x%04x: %s" % (what, code, r.string16()))


def cassandra(host, port, timeout, cafile=None):
    with connect(host, port, timeout, cafile) as s:
        tls = tls_summary(s)
        opts = [(b"CQL_VERSION", b"3.0.0")]
        body = struct.pack(">h", len(opts))
        for k, v in opts:
            body += struct.pack(">h", len(k)) + k + struct.pack(">h", len(v)) + v
        s.sendall(cql_frame(0x01, body))  # STARTUP
        opcode, r = cql_read(s)
        cql_check_error(opcode, r, "STARTUP")
        user = os.environ.get("CASSANDRA_PROBE_USER")
        if opcode == 0x03 and user:  # AUTHENTICATE: SASL PLAIN with CASSANDRA_PROBE_USER/PASSWORD
            token = b"\x00" + user.encode() + b"\x00" + os.environ.get("CASSANDRA_PROBE_PASSWORD", "").encode()
            s.sendall(cql_frame(0x0F, struct.pack(">i", len(token)) + token))  # AUTH_RESPONSE
            opcode, r = cql_read(s)
            cql_check_error(opcode, r, "AUTH_RESPONSE")
            if opcode != 0x10:  # AUTH_SUCCESS
                raise ValueError("AUTH_RESPONSE answered with opcode 0x%02x" % opcode)
        elif opcode != 0x02:  # READY (0x03 AUTHENTICATE means auth is on: set CASSANDRA_PROBE_USER)
            raise ValueError("STARTUP answered with opcode 0x%02x, expected READY" % opcode)

        q = b"SELECT release_version FROM system.local"
        s.sendall(cql_frame(0x07, struct.pack(">i", len(q)) + q + struct.pack(">hB", 0x0001, 0), stream=2))
        opcode, r = cql_read(s)
        cql_check_error(opcode, r, "QUERY")
        if opcode != 0x08:
            raise ValueError("QUERY answered with opcode 0x%02x, expected RESULT" % opcode)
        kind = r.i32()
        if kind != 2:
            raise ValueError("RESULT kind %d, expected Rows" % kind)
        flags, ncols = r.i32(), r.i32()
        if flags & 0x0002:
            r.bytes32()  # paging state
        if not flags & 0x0004:
            if flags & 0x0001:
                r.string16(), r.string16()  # global keyspace, table
            for _ in range(ncols):
                if not flags & 0x0001:
                    r.string16(), r.string16()
                r.string16()  # column name
                if r.i16() != 0x000D:
                    raise ValueError("release_version is not varchar?")
        nrows = r.i32()
        if nrows < 1:
            raise ValueError("system.local returned no row")
        version = r.bytes32().decode("utf-8")
    return "%s, release_version=%s" % (tls, version) if tls else "release_version=%s" % version


def s3(host, port, timeout):
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", "/")
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or b"ListAllMyBucketsResult" not in body:
        raise ValueError("GET / answered %d" % resp.status)
    return "ListBuckets ok"


PROBES = {  # kind: (function, number of extra arguments after TIMEOUT)
    "kafka": (kafka, 0),
    "cassandra": (cassandra, 0),
    "s3": (s3, 0),
    "kafka-sasl-ssl": (kafka, 3),  # CAFILE USER PASSWORD
    "cassandra-tls": (cassandra, 1),  # CAFILE
}


def main(argv):
    if len(argv) < 4 or argv[1] not in PROBES or len(argv[5:]) != PROBES[argv[1]][1]:
        sys.stderr.write(__doc__)
        return 2
    kind, host, port = argv[1], argv[2], int(argv[3])
    timeout = float(argv[4]) if len(argv) > 4 else 5.0
    fn, _ = PROBES[kind]
    try:
        print(fn(host, port, timeout, *argv[5:]))
        return 0
    except Exception as e:  # noqa: BLE001 - any failure means "not ready"
        sys.stderr.write("%s %s:%d: %s: %s\n" % (kind, host, port, type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
