"""The golden frames of testdata/wire, decoded by this client and compared
with their JSON descriptions, which the Go tests write and check
(wire/golden_test.go, TestGoldenJSON): both clients read every frame the
same way. Also: re-encoding a frame gives back its bytes."""

import binascii
import glob
import json
import os
import unittest

from paxosd import wire

GOLDEN_DIR = os.environ.get("PAXOSD_GOLDEN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "testdata", "wire")


def parse_hex(text):
    """An annotated hex file: '#' starts a comment, whitespace is ignored."""
    digits = "".join("".join(line.split("#", 1)[0].split()) for line in text.splitlines())
    return binascii.unhexlify(digits)


def plain(kind, v):
    """A decoded field as the JSON describes it: bin as {"hex": ...}."""
    if isinstance(v, wire.Record):
        return {n: plain(k, getattr(v, n)) for n, k in v.FIELDS}
    if isinstance(v, list):
        return [plain(kind.elem if isinstance(kind, wire._List) else None, e) for e in v]
    if isinstance(v, bytes):
        return {"hex": v.hex()}
    return v


def zero_like(v):
    if isinstance(v, dict) and set(v) == {"hex"}:
        return v["hex"] == ""
    if isinstance(v, dict):
        return all(zero_like(x) for x in v.values())
    return v in (0, False, "", [])


class GoldenFrames(unittest.TestCase):
    def golden_files(self):
        files = sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.hex")))
        self.assertTrue(files, "no golden frames under %s" % GOLDEN_DIR)
        return files

    def compare(self, path, record, want, where):
        """Every field of want equals the record's; every field of the
        record missing from want is zero; want names no field the record
        lacks (this client would be behind the wire)."""
        names = record.field_names()
        for name in want:
            self.assertIn(name, names, "%s: %s: field %r is unknown to the Python client" % (path, where, name))
        for name, kind in record.FIELDS:
            got = plain(kind, getattr(record, name))
            if name in want:
                w = want[name]
                if wire._is_record(kind):
                    self.compare(path, getattr(record, name), w, where + "." + name)
                    continue
                if isinstance(kind, wire._List) and wire._is_record(kind.elem):
                    self.assertEqual(len(getattr(record, name)), len(w), "%s: %s.%s" % (path, where, name))
                    for i, (r, wi) in enumerate(zip(getattr(record, name), w)):
                        self.compare(path, r, wi, "%s.%s[%d]" % (where, name, i))
                    continue
                self.assertEqual(got, w, "%s: %s.%s" % (path, where, name))
            else:
                self.assertTrue(zero_like(got), "%s: %s.%s = %r, absent from the description (zero)" % (path, where, name, got))

    def test_every_frame_matches_its_description(self):
        for path in self.golden_files():
            with self.subTest(frame=os.path.basename(path)):
                desc_path = path[:-len(".hex")] + ".json"
                self.assertTrue(os.path.exists(desc_path), "%s has no description (go test ./wire -update)" % path)
                with open(desc_path) as f:
                    desc = json.load(f)
                with open(path) as f:
                    body = wire.split_frame(parse_hex(f.read()))
                ft, record = wire.decode_body(body)
                self.assertEqual(wire.FRAME_NAMES[ft], desc["frame"])
                fields = dict(desc["fields"])
                self.assertEqual(fields.pop("frame_type"), ft)
                self.compare(path, record, fields, desc["frame"])
                # Encoding the decoded record writes the same bytes, for
                # as many fields as the frame has (a legacy frame stops
                # early; hello and messages leave trailing zero fields out).
                n = len(wire.unpack_body(body)) - 1
                self.assertEqual(wire.encode_body(record, n).hex(), body.hex(), "%s: re-encoded" % path)

    def test_keepalive_batch(self):
        # Version 12: the batch's ids and the answer's expired ids.
        with open(os.path.join(GOLDEN_DIR, "keepalive_batch_request.hex")) as f:
            _, q = wire.decode_body(wire.split_frame(parse_hex(f.read())))
        self.assertEqual((q.op, q.session_ids), (wire.OP_SESSION_KEEPALIVE_BATCH, [42, 43, 57]))
        self.assertTrue(wire.through_log(q.op))
        with open(os.path.join(GOLDEN_DIR, "keepalive_batch_response.hex")) as f:
            _, r = wire.decode_body(wire.split_frame(parse_hex(f.read())))
        self.assertEqual((r.id, r.expired_sessions), (15, [43]))

    def test_busy(self):
        # Version 13: an overloaded node's refusal, and the wait it asks for.
        from paxosd import errors
        with open(os.path.join(GOLDEN_DIR, "busy_response.hex")) as f:
            _, r = wire.decode_body(wire.split_frame(parse_hex(f.read())))
        self.assertEqual((r.id, r.err, r.err_msg, r.retry_after_ms), (16, wire.ERR_BUSY, "busy: retry after 120 ms", 120))
        e = errors.from_response(r)
        self.assertIsInstance(e, errors.BusyError)
        self.assertEqual((str(e), e.retry_after_ms), ("busy: retry after 120 ms", 120))


class Codec(unittest.TestCase):
    def test_missing_fields_are_zero_and_extra_ignored(self):
        import msgpack
        # [2, 7, 2, 0, 0, 0, "k"] is a complete get request (PROTOCOL.md §1).
        ft, q = wire.decode_body(msgpack.packb([2, 7, 2, 0, 0, 0, "k"]))
        self.assertEqual((ft, q.id, q.op, q.key, q.value, q.serializable), (2, 7, 2, "k", b"", False))
        # Unknown trailing elements of any type are skipped; nil is zero.
        extra = [3, 9, 0, None, None, None, 5]
        extra += [None] * (1 + len(wire.Response.FIELDS) - len(extra)) + [{"x": 1.5}, [1, 2], -3]
        _, r = wire.decode_body(msgpack.packb(extra, use_bin_type=True))
        self.assertEqual((r.id, r.revision, r.err_msg, r.kv.key), (9, 5, "", ""))
        # str for a bin field and bin for a str field are both accepted.
        _, r = wire.decode_body(msgpack.packb([3, 1, 0, b"msg", 0, "", 0, True, [b"k", "v"]], use_bin_type=True))
        self.assertEqual((r.err_msg, r.kv.key, r.kv.value), ("msg", "k", b"v"))

    def test_malformed(self):
        import msgpack
        for body in [
            msgpack.packb([9, 1]),                    # unknown frame type
            msgpack.packb({"a": 1}),                  # not an array
            msgpack.packb([3, 1]) + b"\x00",          # bytes after the value
            msgpack.packb([3, -1]),                   # negative uint
            msgpack.packb([3, 1, 256]),               # err is a uint8
            msgpack.packb([3, 1, 0, "", 0, "", 1.5]), # float for a uint
        ]:
            with self.subTest(body=body.hex()):
                with self.assertRaises(wire.ProtocolError):
                    wire.decode_body(body)

    def test_request_encoding(self):
        q = wire.Request(id=1, op=wire.OP_PUT, client_id=77, seq=1, key="greeting", value=b"hello", timeout_ms=5000)
        _, back = wire.decode_body(wire.encode_body(q))
        self.assertEqual(back, q)
        frame = wire.encode_frame(q)
        self.assertEqual(int.from_bytes(frame[:4], "big"), len(frame) - 4)
        self.assertEqual(len(wire.unpack_body(frame[4:])), 1 + len(wire.Request.FIELDS))


if __name__ == "__main__":
    unittest.main()
