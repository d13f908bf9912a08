#!/usr/bin/env python3
"""Readiness probes used by scripts/services (standard library only).

    probe.py kafka HOST PORT [TIMEOUT]      Kafka Metadata v4 request; ok when a broker is listed
    probe.py cassandra HOST PORT [TIMEOUT]  CQL v4 STARTUP + "SELECT release_version FROM system.local"
    probe.py s3 HOST PORT [TIMEOUT]         S3 ListBuckets (GET /); ok on an XML answer

Prints a one-line summary and exits 0 when the service answered the request, 1 otherwise
(reason on stderr).
"""
import socket
import struct
import sys


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

def kafka(host, port, timeout):
    api_key, api_version, corr = 3, 4, 4242  # Metadata v4 (non-flexible; v0-v3 are gone in 4.x)
    client_id = b"borboleta-services-probe"
    header = struct.pack(">hhih", api_key, api_version, corr, len(client_id)) + client_id
    body = struct.pack(">ib", 0, 0)  # topics: empty array (no topics), allow_auto_topic_creation=false
    req = header + body
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        r = Reader(recv_exact(s, size))
    if r.i32() != corr:
        raise ValueError("correlation id mismatch")
    r.i32()  # throttle_time_ms
    brokers = []
    for _ in range(r.i32()):
        node, bhost, bport, _rack = r.i32(), r.string16(), r.i32(), r.string16()
        brokers.append("%d@%s:%d" % (node, bhost, bport))
    cluster_id = r.string16()
    controller = r.i32()
    if not brokers:
        raise ValueError("metadata lists no broker yet")
    return "brokers=%s cluster_id=%s controller=%d" % (",".join(brokers), cluster_id, controller)


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


def cassandra(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        opts = [(b"CQL_VERSION", b"3.0.0")]
        body = struct.pack(">h", len(opts))
        for k, v in opts:
            body += struct.pack(">h", len(k)) + k + struct.pack(">h", len(v)) + v
        s.sendall(cql_frame(0x01, body))  # STARTUP
        opcode, r = cql_read(s)
        cql_check_error(opcode, r, "STARTUP")
        if opcode != 0x02:  # READY (0x03 AUTHENTICATE would mean auth is on)
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
    return "release_version=%s" % version


def s3(host, port, timeout):
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", "/")
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or b"ListAllMyBucketsResult" not in body:
        raise ValueError("GET / answered %d" % resp.status)
    return "ListBuckets ok"


def main(argv):
    if len(argv) < 4 or argv[1] not in ("kafka", "cassandra", "s3"):
        sys.stderr.write(__doc__)
        return 2
    kind, host, port = argv[1], argv[2], int(argv[3])
    timeout = float(argv[4]) if len(argv) > 4 else 5.0
    try:
        print({"kafka": kafka, "cassandra": cassandra, "s3": s3}[kind](host, port, timeout))
        return 0
    except Exception as e:  # noqa: BLE001 - any failure means "not ready"
        sys.stderr.write("%s %s:%d: %s: %s\n" % (kind, host, port, type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
