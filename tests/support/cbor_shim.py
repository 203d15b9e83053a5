"""Test-only bridge: CloudWatch's Smithy RPC v2 CBOR protocol -> moto's JSON protocol.

aws-sdk-cloudwatch >= 1.100 speaks RPC v2 CBOR; moto answers CloudWatch only in
the Query and JSON protocols (moto issue 9195). This shim sits in front of moto
for CloudWatch alone (tests point AWS_ENDPOINT_URL_CLOUDWATCH at it): it turns
each CBOR request into the equivalent awsJson1_0 request, and moto's JSON answer
back into CBOR. Timestamps travel as CBOR tag 1 (epoch seconds), as the protocol
requires. It is never part of teal itself.

usage: cbor_shim.py LISTEN_PORT MOTO_URL
"""

import json
import sys
import urllib.error
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cbor2

SERVICE = "GraniteServiceVersion20100801"


def to_jsonable(v):
    """CBOR values -> JSON values (timestamps become epoch seconds)."""
    if isinstance(v, cbor2.CBORTag) and v.tag == 1:
        return v.value
    if isinstance(v, datetime):
        return v.timestamp()
    if isinstance(v, dict):
        return {k: to_jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_jsonable(x) for x in v]
    if isinstance(v, bytes):
        import base64

        return base64.b64encode(v).decode()
    return v


def epoch(v):
    if isinstance(v, (int, float)):
        return float(v)
    return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()


def to_cborable(v, key=""):
    """JSON values -> CBOR values; members named *Timestamp(s) become tag 1."""
    if isinstance(v, dict):
        return {k: to_cborable(x, k) for k, x in v.items()}
    if isinstance(v, list):
        return [to_cborable(x, key) for x in v]
    if v is not None and (key.endswith("Timestamp") or key.endswith("Timestamps")):
        return cbor2.CBORTag(1, epoch(v))
    return v


class Shim(BaseHTTPRequestHandler):
    moto = ""

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path
        if "/operation/" not in path:
            return self.reply(404, {"__type": "UnknownOperation", "message": path})
        op = path.rsplit("/", 1)[1]
        payload = to_jsonable(cbor2.loads(body)) if body else {}
        req = urllib.request.Request(
            self.moto + "/",
            data=json.dumps(payload).encode(),
            method="POST",
            headers={
                "X-Amz-Target": f"{SERVICE}.{op}",
                "Content-Type": "application/x-amz-json-1.0",
                # moto routes on the credential scope of the signature.
                "Authorization": self.headers.get("Authorization", ""),
                "X-Amz-Date": self.headers.get("X-Amz-Date", ""),
            },
        )
        try:
            with urllib.request.urlopen(req) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            answer = json.loads(text) if text.strip() else {}
        except ValueError:
            answer = {"__type": "InternalFailure", "message": text.decode(errors="replace")}
        if status >= 400 and "__type" in answer:
            # awsJson error codes may carry a namespace prefix; CBOR wants the shape name.
            answer["__type"] = str(answer["__type"]).split("#")[-1]
        self.reply(status, to_cborable(answer))

    def reply(self, status, obj):
        data = cbor2.dumps(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/cbor")
        self.send_header("smithy-protocol", "rpc-v2-cbor")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    port, moto = int(sys.argv[1]), sys.argv[2].rstrip("/")
    Shim.moto = moto
    ThreadingHTTPServer(("127.0.0.1", port), Shim).serve_forever()


if __name__ == "__main__":
    main()
