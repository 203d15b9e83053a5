"""Test-only bridge: CloudWatch's Smithy RPC v2 CBOR protocol -> moto's JSON protocol.

aws-sdk-cloudwatch >= 1.100 speaks RPC v2 CBOR; moto answers CloudWatch only in
the Query and JSON protocols (moto issue 9195). This shim sits in front of moto
for CloudWatch alone (tests point AWS_ENDPOINT_URL_CLOUDWATCH at it): it turns
each CBOR request into the equivalent awsJson1_0 request, and moto's JSON answer
back into CBOR. Timestamps travel as CBOR tag 1 (epoch seconds), as the protocol
requires. It is never part of teal itself.

GetMetricData's metric math is evaluated here: moto only echoes an expression
that is a single query id (moto/cloudwatch/metric_data_expression_parser.py).
The shim sends moto the MetricStat queries alone, then evaluates each
expression over their results, timestamp by timestamp: + - * /, parentheses,
numbers, query ids and FILL(id, number). What it does not model: every other
metric math function (IF, SUM, METRICS(), RATE, ...), Metrics Insights
queries, and NaN results (a timestamp where an operand is missing, or a
division by zero, is left out, as CloudWatch leaves out a missing point).

usage: cbor_shim.py LISTEN_PORT MOTO_URL
"""

import ast

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


def evaluate(expression, series):
    """Metric math over `series` (id -> {timestamp: value}): {timestamp: value}."""
    tree = ast.parse(expression.replace("FILL(", "FILL_(").strip(), mode="eval")
    ids = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id != "FILL_"}
    unknown = ids - series.keys()
    if unknown:
        raise ValueError(f"unknown ids in expression: {sorted(unknown)}")
    stamps = sorted({t for i in ids for t in series[i]})

    def ev(node, at):
        if isinstance(node, ast.Expression):
            return ev(node.body, at)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return series[node.id].get(at)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = ev(node.operand, at)
            return None if v is None else -v
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "FILL_":
            v = ev(node.args[0], at)
            return ev(node.args[1], at) if v is None else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left, at), ev(node.right, at)
            if a is None or b is None:
                return None
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return None if b == 0 else a / b
        raise ValueError(f"metric math the shim does not model: {ast.dump(node)}")

    out = {}
    for at in stamps:
        v = ev(tree, at)
        if v is not None:
            out[at] = v
    return out


def moto_call(moto, op, payload, headers):
    req = urllib.request.Request(
        moto + "/",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={
            "X-Amz-Target": f"{SERVICE}.{op}",
            "Content-Type": "application/x-amz-json-1.0",
            # moto routes on the credential scope of the signature.
            "Authorization": headers.get("Authorization", ""),
            "X-Amz-Date": headers.get("X-Amz-Date", ""),
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
    return status, answer


def get_metric_data(moto, payload, headers):
    """GetMetricData with metric math evaluated here (see the module doc)."""
    queries = payload.get("MetricDataQueries", [])
    stats = [dict(q, ReturnData=True) for q in queries if "MetricStat" in q]
    status, answer = moto_call(moto, "GetMetricData", dict(payload, MetricDataQueries=stats), headers)
    if status >= 400:
        return status, answer
    by_id = {}
    for r in answer.get("MetricDataResults", []):
        by_id[r["Id"]] = dict(zip((epoch(t) for t in r.get("Timestamps", [])), r.get("Values", [])))
    results = []
    for q in queries:
        if not q.get("ReturnData", True):
            continue
        if "MetricStat" in q:
            points = by_id.get(q["Id"], {})
        else:
            try:
                points = evaluate(q["Expression"], by_id)
            except (ValueError, SyntaxError) as e:
                return 400, {"__type": "ValidationError", "message": str(e)}
        stamps = sorted(points)
        results.append({
            "Id": q["Id"],
            "Label": q.get("Label", q["Id"]),
            "Timestamps": stamps,
            "Values": [points[t] for t in stamps],
            "StatusCode": "Complete",
        })
    return 200, {"MetricDataResults": results, "Messages": []}


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
        if op == "GetMetricData":
            status, answer = get_metric_data(self.moto, payload, self.headers)
        else:
            status, answer = moto_call(self.moto, op, payload, self.headers)
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
