#!/usr/bin/env python3
"""Loopback mock of the vendor APIs engineering_metrics syncs from.

One process serves every vendor under a path prefix (/github, /gitlab, ...),
from an in-memory "world" that tests load, generate and mutate through a
control API.  Standard library only.

    python3 mock_api.py [--port 0] [--world FILE] [--generate github:runs=1000,seed=7]

The first line printed on stdout is the base address (http://127.0.0.1:PORT).

Vendors are plug-ins: test/mock/vendors/<name>.py, discovered at start.  See
vendors/__init__.py for the interface a vendor module implements.

Control API (JSON in and out):
    GET    /_control/health
    GET    /_control/world[/<vendor>]        the world (or one vendor's part)
    PUT    /_control/world/<vendor>          replace a vendor's world
    POST   /_control/generate/<vendor>       replace it by a generated one (params in the body)
    POST   /_control/mutate/<vendor>         vendor-specific change ({"op": ...})
    POST   /_control/faults                  add a fault (see Fault below); returns {"id": n}
    GET    /_control/faults                  faults still armed
    DELETE /_control/faults                  disarm all faults
    GET    /_control/requests[?vendor=x]     request log
    DELETE /_control/requests                clear the log
    POST   /_control/org                     replace every vendor's world by a generated
                                             organisation (org.py; params in the body)
    GET    /_control/org                     its manifest: sources and SLOs to register

`--org seed=7,anchor=2024-06-30T12:00:00Z` loads an organisation at start.

A fault: {"match": {"vendor": "github", "method": "GET", "path": "regex",
"query": "regex"}, "skip": 0, "count": 1, "kind": ..., ...} applies to the
`count` requests (-1: all) that match after `skip` matches, with kind:
    status        {"status": 500, "body": {...} or "text", "headers": {...}, "bare": false}
                  (bare: without the vendor's common headers, as from a proxy)
    rate_limit    {"status": 403|429, "reset_in": 3 or "reset_at": epoch, "retry_after": null,
                   "style": "github"|"gitlab"|"pagerduty", "secondary": false}
    slow          {"delay": 5}  (then the normal response)
    truncate      {"mode": "close"} (Content-Length promised, half sent, connection closed)
                  or {"mode": "json"} (half the JSON, consistent Content-Length)
    malformed     200 with a body that is not JSON
    invalid_utf8  200 with JSON containing bytes that are not UTF-8
    content_type  {"content_type": "text/html"} 200 with an HTML page
    oversized     {"size": 2000000} 200 with a JSON body of that many bytes
    echo_headers  500 whose body repeats the request headers (tests redaction)
    redirect      {"status": 302, "location": "http://elsewhere/..."}
    drop          close the connection without answering
  hostile servers (the normal response, altered):
    rewrite       {"pattern": "regex", "replacement": "text", "times": 1} on the JSON text
                  (e.g. a \\u0000 escape, a number like 1e400, a timestamp without a zone)
    duplicate     {"key": "workflow_runs"} the first item of that list (or of a bare list) twice
    self_link     Link: rel="next" pointing at the page itself
    endless_link  Link: rel="next" to page+1 on every page, past the last one too
    drip          {"interval": 0.2} the body one byte per interval (below any read timeout)
    big_headers   {"size": 1048576} that many bytes of extra header lines
    deep          {"depth": 100000} a 200 whose body is arrays nested that deep
"""

import argparse
import email.utils
import json
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import org
import vendors
from vendors.common import NotFound, Request, Response, json_response


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.world = {name: mod.empty_world() for name, mod in vendors.REGISTRY.items()}
        self.faults = []
        self.next_fault = 1
        self.log = []
        self.org = None

    def load_org(self, params):
        """Every vendor's world from one generated organisation (org.py)."""
        generated = org.generate(params)
        with self.lock:
            for vendor, world in generated["worlds"].items():
                if vendor in vendors.REGISTRY:
                    self.world[vendor] = vendors.REGISTRY[vendor].load_world(world)
                    if vendor in generated.get("live", {}):
                        generated["live"][vendor](self.world[vendor])
            self.org = generated
        return generated

    def take_fault(self, vendor, method, path, query):
        with self.lock:
            for f in self.faults:
                m = f.get("match", {})
                if m.get("vendor") not in (None, vendor):
                    continue
                if m.get("method") not in (None, method):
                    continue
                if "path" in m and not re.search(m["path"], path):
                    continue
                if "query" in m and not re.search(m["query"], query):
                    continue
                if f.get("skip", 0) > 0:
                    f["skip"] -= 1
                    continue
                count = f.get("count", 1)
                if count == 0:
                    continue
                if count > 0:
                    f["count"] = count - 1
                return dict(f)
        return None


STATE = State()


TRANSFORMS = ("rewrite", "duplicate", "self_link", "endless_link", "drip", "big_headers")


def transform_response(fault, req, resp):
    """The normal response, altered as a hostile or broken server would."""
    kind = fault["kind"]
    if kind == "rewrite":
        text = resp.body.decode("utf-8")
        text = re.sub(fault["pattern"], fault["replacement"], text, count=int(fault.get("times", 1)))
        resp.body = text.encode("utf-8")
    elif kind == "duplicate":
        doc = json.loads(resp.body)
        items = doc[fault["key"]] if fault.get("key") else doc
        if items:
            items.append(dict(items[0]))
        resp.body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    elif kind in ("self_link", "endless_link"):
        if kind == "self_link":
            target = "%s%s?%s" % (req.base, req.path, req.raw_query)
        else:
            page = int(req.arg("page", 1) or 1)
            query = [(k, v) for k, vs in req.query.items() for v in vs if k != "page"]
            target = "%s%s?%s" % (req.base, req.path, urllib.parse.urlencode(query + [("page", str(page + 1))]))
        resp.headers = [(n, v) for n, v in resp.headers if n.lower() != "link"]
        resp.headers.append(("Link", '<%s>; rel="next"' % target))
    elif kind == "big_headers":
        size, line = int(fault.get("size", 1 << 20)), 1000
        resp.headers += [("X-Padding-%d" % i, "p" * line) for i in range(size // line)]
    return resp


def fault_response(fault, req):
    """The response a fault produces, or None to answer normally."""
    kind = fault["kind"]
    if kind == "status":
        body = fault.get("body", {"message": "Server Error"})
        if isinstance(body, str):
            resp = Response(fault.get("status", 500), body, list(fault.get("headers", {}).items()),
                            fault.get("content_type", "text/plain"))
        else:
            resp = json_response(fault.get("status", 500), body, list(fault.get("headers", {}).items()))
        # "bare": a proxy answered, not the vendor: none of its usual headers
        resp.skip_vendor_headers = bool(fault.get("bare"))
        return resp
    if kind == "rate_limit":
        now = int(time.time())
        # reset_at (epoch seconds) lets a test know the exact instant it sent
        reset = int(fault["reset_at"]) if "reset_at" in fault else now + int(fault.get("reset_in", 60))
        style = fault.get("style", "github")
        headers = []
        if style == "github":
            headers += [("x-ratelimit-limit", "5000"), ("x-ratelimit-remaining", "0" if not fault.get("secondary") else "4000"),
                        ("x-ratelimit-used", "5000"), ("x-ratelimit-reset", str(reset)), ("x-ratelimit-resource", "core")]
        elif style == "gitlab":
            # gitlabhq doc/administration/settings/user_and_ip_rate_limits.md
            headers += [("RateLimit-Name", "throttle_authenticated_api"), ("RateLimit-Limit", "600"),
                        ("RateLimit-Observed", "601"), ("RateLimit-Remaining", "0"),
                        ("RateLimit-Reset", str(reset)),
                        ("RateLimit-ResetTime", email.utils.formatdate(reset, usegmt=True))]
        elif style == "pagerduty":
            headers += [("ratelimit-limit", "960"), ("ratelimit-remaining", "0"), ("ratelimit-reset", str(reset - now))]
        if fault.get("retry_after") is not None:
            headers.append(("Retry-After", str(fault["retry_after"])))
        if style == "gitlab":
            resp = Response(fault.get("status", 429), "Retry later\n", headers, "text/plain; charset=utf-8")
            resp.skip_vendor_headers = True
            return resp
        message = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                   if fault.get("secondary") else "API rate limit exceeded for user.")
        resp = json_response(fault.get("status", 403), {"message": message}, headers)
        resp.skip_vendor_headers = True
        return resp
    if kind == "malformed":
        return Response(200, '{"total_count": 3, "workflow_runs": [{"id": 1,, ]')
    if kind == "invalid_utf8":
        return Response(200, b'{"total_count": 1, "workflow_runs": [{"id": 1, "name": "bad \xff\xfe bytes"}]}')
    if kind == "content_type":
        return Response(200, "<html><body>Login required</body></html>", [],
                        fault.get("content_type", "text/html"))
    if kind == "oversized":
        size = int(fault.get("size", 2_000_000))
        filler = "x" * max(size - 20, 0)
        return Response(200, '{"padding": "%s"}' % filler)
    if kind == "echo_headers":
        # credentials first, as careless servers do in their error pages
        return json_response(500, {"authorization": req.headers.get("authorization"),
                                   "message": "internal error", "request_headers": req.headers})
    if kind == "deep":
        depth = int(fault.get("depth", 100000))
        return Response(200, "[" * depth + "]" * depth)
    if kind == "redirect":
        return Response(fault.get("status", 302), b"", [("Location", fault["location"])])
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "engineering-metrics-mock/1"

    def setup(self):
        super().setup()
        # headers and body go out in separate writes: without TCP_NODELAY,
        # Nagle and the client's delayed ACK add 40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        return json.loads(data) if data else {}

    def _send(self, resp, truncate=None):
        body = resp.body
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers:
            self.send_header(name, value)
        if truncate == "json":
            body = body[: len(body) // 2]
        if isinstance(truncate, tuple):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(truncate[1])
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if truncate == "close":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def do_GET(self):
        self._dispatch("GET")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        parts = parsed.path.split("/", 2)
        prefix = parts[1] if len(parts) > 1 else ""
        if prefix == "_control":
            try:
                self._send(self._control(method, "/" + (parts[2] if len(parts) > 2 else ""), parsed.query))
            except (ValueError, KeyError) as e:
                self._send(json_response(400, {"error": str(e)}))
            return
        self._vendor(method, prefix, "/" + (parts[2] if len(parts) > 2 else ""), parsed.query)

    def _vendor(self, method, prefix, path, query):
        module = vendors.REGISTRY.get(prefix)
        headers = {k.lower(): v for k, v in self.headers.items()}
        base = "http://%s/%s" % (self.headers.get("Host", "127.0.0.1"), prefix)
        req = Request(method, prefix, path, query, headers, base)
        entry = {"method": method, "vendor": prefix, "path": "/" + prefix + path, "query": query,
                 "time": time.time(), "auth_ok": None, "status": None, "fault": None}
        if module is None:
            entry["status"] = 404
            self._log(entry)
            self._send(json_response(404, {"message": "no such vendor"}))
            return

        with STATE.lock:
            entry["auth_ok"] = module.check_auth(STATE.world[prefix], req)
        fault = STATE.take_fault(prefix, method, "/" + prefix + path, query)
        truncate = None
        resp = None
        if fault is not None:
            entry["fault"] = fault["kind"]
            if fault["kind"] == "slow":
                time.sleep(float(fault.get("delay", 5)))
            elif fault["kind"] == "drop":
                entry["status"] = 0
                self._log(entry)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif fault["kind"] == "truncate":
                truncate = fault.get("mode", "close")
            elif fault["kind"] in TRANSFORMS:
                pass
            else:
                resp = fault_response(fault, req)

        with STATE.lock:
            world = STATE.world[prefix]
            if resp is None:
                if not entry["auth_ok"]:
                    resp = module.unauthorized(world, req)
                else:
                    try:
                        resp = module.handle(world, req)
                    except NotFound:
                        resp = json_response(404, {"message": "Not Found"})
            if not getattr(resp, "skip_vendor_headers", False) and hasattr(module, "common_headers"):
                resp.headers = module.common_headers(world, req) + resp.headers
        if fault is not None and fault["kind"] in TRANSFORMS and resp.status == 200:
            resp = transform_response(fault, req, resp)
            if fault["kind"] == "drip":
                truncate = ("drip", float(fault.get("interval", 0.2)))
        entry["status"] = resp.status
        self._log(entry)
        self._send(resp, truncate)

    def _log(self, entry):
        with STATE.lock:
            entry["seq"] = len(STATE.log) + 1
            STATE.log.append(entry)

    def _control(self, method, path, query):
        q = urllib.parse.parse_qs(query)
        if path == "/health":
            return json_response(200, {"ok": True, "vendors": sorted(vendors.REGISTRY)})
        if path.startswith("/world"):
            vendor = path[len("/world/"):] if path.startswith("/world/") else None
            with STATE.lock:
                if method == "GET":
                    return json_response(200, STATE.world[vendor] if vendor else STATE.world)
                if method == "PUT" and vendor in vendors.REGISTRY:
                    STATE.world[vendor] = vendors.REGISTRY[vendor].load_world(self._body())
                    return json_response(200, {"ok": True})
        if path.startswith("/generate/") and method == "POST":
            vendor = path[len("/generate/"):]
            world = vendors.REGISTRY[vendor].generate(self._body())
            with STATE.lock:
                STATE.world[vendor] = world
            return json_response(200, {"ok": True})
        if path.startswith("/mutate/") and method == "POST":
            vendor = path[len("/mutate/"):]
            with STATE.lock:
                result = vendors.REGISTRY[vendor].mutate(STATE.world[vendor], self._body())
            return json_response(200, result or {"ok": True})
        if path == "/faults":
            with STATE.lock:
                if method == "POST":
                    fault = self._body()
                    if "kind" not in fault:
                        raise ValueError("a fault needs a kind")
                    fault["id"] = STATE.next_fault
                    STATE.next_fault += 1
                    STATE.faults.append(fault)
                    return json_response(200, {"id": fault["id"]})
                if method == "GET":
                    return json_response(200, [f for f in STATE.faults if f.get("count", 1) != 0])
                if method == "DELETE":
                    STATE.faults = []
                    return json_response(200, {"ok": True})
        if path == "/org":
            if method == "POST":
                generated = STATE.load_org(self._body())
                return json_response(200, {"manifest": generated["manifest"], "summary": org.summary(generated)})
            if method == "GET":
                if STATE.org is None:
                    return json_response(404, {"error": "no organisation loaded"})
                return json_response(200, STATE.org["manifest"])
        if path == "/requests":
            with STATE.lock:
                if method == "GET":
                    vendor = q.get("vendor", [None])[0]
                    return json_response(200, [e for e in STATE.log if vendor in (None, e["vendor"])])
                if method == "DELETE":
                    STATE.log = []
                    return json_response(200, {"ok": True})
        return json_response(404, {"error": "unknown control endpoint %s %s" % (method, path)})


def parse_generate(spec):
    """'github:runs=100,seed=7' -> ('github', {'runs': 100, 'seed': 7})"""
    vendor, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = int(value)
        except ValueError:
            try:
                params[key] = float(value)
            except ValueError:
                params[key] = value
    return vendor, params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--world", help="JSON file: {vendor: world, ...}")
    ap.add_argument("--generate", action="append", default=[], help="vendor:key=value,...")
    ap.add_argument("--org", help="a generated organisation for every vendor: seed=7,anchor=...,days=180")
    args = ap.parse_args()

    if args.org is not None:
        STATE.load_org(parse_generate("org:" + args.org)[1])

    if args.world:
        with open(args.world) as f:
            for vendor, world in json.load(f).items():
                STATE.world[vendor] = vendors.REGISTRY[vendor].load_world(world)
    for spec in args.generate:
        vendor, params = parse_generate(spec)
        STATE.world[vendor] = vendors.REGISTRY[vendor].generate(params)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("http://127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
