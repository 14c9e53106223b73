"""Prometheus HTTP API v1, range queries, served under /prometheus.

World:
    {"token": "secret" or null,      Bearer token a proxy in front of Prometheus would require
     "max_points": 11000,            points per series a range query may return
     "queries": {"<PromQL text>": query, ...}}
    query: {"values": {"<unix seconds>": value, ...},   the expression's value at those instants
            "series": 1,          spread every value over this many series (their sum is the value)
            "warnings": [...],    sent with every answer (optional)
            "error": {"status": 422, "errorType": "execution", "error": "..."}  (optional: always fail)}
    value: a number, or "NaN", "+Inf", "-Inf"

Fidelity: GET /api/v1/query_range with query, start and end (RFC 3339 or
unix seconds) and step (a Prometheus duration such as 1m or 90s, or
seconds); the expression is evaluated at start, start + step, ... up to
end, and each instant where the world has a value becomes a sample
[<unix time>, "<value>"] (values written as Prometheus writes them: no
exponent, "NaN", "+Inf", "-Inf").  Instants without a value are left out,
as Prometheus leaves out instants where an expression has no result; an
unknown query is an empty matrix (a metric that does not exist).  Bad
parameters are 400 {"status": "error", "errorType": "bad_data", "error":
...} with Prometheus' messages, including "exceeded maximum resolution of
11,000 points per timeseries" when (end - start) / step, in whole steps,
is above max_points.  With a token in the world, requests need
"Authorization: Bearer <token>" (401 otherwise, as from an authenticating
proxy).  The query text is matched exactly.
"""

import random
import re

from vendors.common import NotFound, Response, json_response, parse_time

PREFIX = "prometheus"

MAX_POINTS = 11000


def empty_world():
    return {"token": None, "max_points": MAX_POINTS, "queries": {}}


def _normalise_query(spec):
    spec = dict(spec or {})
    spec["values"] = {str(int(float(k))): v for k, v in (spec.get("values") or {}).items()}
    spec["series"] = max(int(spec.get("series", 1)), 1)
    return spec


def load_world(data):
    world = empty_world()
    world["token"] = data.get("token")
    world["max_points"] = int(data.get("max_points", MAX_POINTS))
    world["queries"] = {q: _normalise_query(spec) for q, spec in (data.get("queries") or {}).items()}
    return world


# ---------------------------------------------------------------------------
# Authentication and errors
# ---------------------------------------------------------------------------

def check_auth(world, req):
    token = world.get("token")
    if not token:
        return True
    return req.headers.get("authorization", "") == "Bearer " + token


def unauthorized(world, req):
    return Response(401, "Unauthorized\n", [("WWW-Authenticate", 'Bearer realm="prometheus"')],
                    "text/plain; charset=utf-8")


def _error(status, error_type, message):
    return json_response(status, {"status": "error", "errorType": error_type, "error": message})


def _bad_param(name, message):
    return _error(400, "bad_data", 'invalid parameter "%s": %s' % (name, message))


# ---------------------------------------------------------------------------
# Parameters, as Prometheus parses them
# ---------------------------------------------------------------------------

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


def _parse_time(text):
    """unix seconds (float) from unix seconds or RFC 3339; None if neither."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_time(text)
    except ValueError:
        return None


def _parse_duration(text):
    """seconds (float) from seconds or a Prometheus duration; None if neither."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    m = _DURATION.match(text)
    if not text or m is None:
        return None
    units = (31536000, 604800, 86400, 3600, 60, 1, 0.001)
    return float(sum(int(g) * u for g, u in zip(m.groups(), units) if g is not None))


def _format_value(v):
    if isinstance(v, str):
        return v
    v = float(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer():
        return str(int(v))
    return repr(v)


def _format_time(t):
    return int(t) if float(t).is_integer() else round(t, 3)


def _split(value, n):
    """n shares of a value whose sum is the value (specials go to the first)."""
    if n == 1:
        return [value]
    if isinstance(value, str) or not float(value).is_integer():
        return [value] + [0] * (n - 1)
    whole = int(value)
    share, rest = divmod(whole, n)
    return [share + rest] + [share] * (n - 1)


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def _query_range(world, req):
    query = req.arg("query")
    if not query:
        return _bad_param("query", "unknown position: parse error: no expression found in input")
    start = _parse_time(req.arg("start"))
    if start is None:
        return _bad_param("start", 'cannot parse "%s" to a valid timestamp' % (req.arg("start") or ""))
    end = _parse_time(req.arg("end"))
    if end is None:
        return _bad_param("end", 'cannot parse "%s" to a valid timestamp' % (req.arg("end") or ""))
    if end < start:
        return _bad_param("end", "end timestamp must not be before start time")
    step = _parse_duration(req.arg("step"))
    if step is None:
        return _bad_param("step", 'cannot parse "%s" to a valid duration' % (req.arg("step") or ""))
    if step <= 0:
        return _bad_param("step", "zero or negative query resolution step widths are not accepted. "
                                  "Try a positive integer")
    # Go divides durations in whole nanoseconds: the number of whole steps
    if int(round((end - start) * 1e9)) // int(round(step * 1e9)) > world.get("max_points", MAX_POINTS):
        return _error(400, "bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                                       "Try decreasing the query resolution (?step=XX)")

    spec = world["queries"].get(query)
    if spec is None:
        return json_response(200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
    if spec.get("error"):
        err = spec["error"]
        return _error(int(err.get("status", 422)), err.get("errorType", "execution"), err.get("error", "error"))

    n = spec["series"]
    series = [[] for _ in range(n)]
    k = 0
    while True:
        t = start + k * step
        if t > end + 1e-9:
            break
        k += 1
        if not float(t).is_integer():
            continue
        value = spec["values"].get(str(int(t)))
        if value is None:
            continue
        for i, share in enumerate(_split(value, n)):
            series[i].append([_format_time(t), _format_value(share)])
    result = [{"metric": {"instance": "i%d" % (i + 1), "job": "mock"}, "values": values}
              for i, values in enumerate(series) if values]
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    if spec.get("warnings"):
        body["warnings"] = list(spec["warnings"])
    return json_response(200, body)


def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    if req.path == "/api/v1/query_range":
        return _query_range(world, req)
    raise NotFound()


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

def mutate(world, op):
    """Ops: values {query, values: {unix: value or null}} (merge; null removes the
    instant; creates the query); query {query, spec} (replace it, or remove it
    with spec null); set {key, value} (token, max_points)."""
    kind = op["op"]
    if kind == "values":
        spec = world["queries"].setdefault(op["query"], _normalise_query({}))
        for k, v in op["values"].items():
            key = str(int(float(k)))
            if v is None:
                spec["values"].pop(key, None)
            else:
                spec["values"][key] = v
    elif kind == "query":
        if op.get("spec") is None:
            world["queries"].pop(op["query"], None)
        else:
            world["queries"][op["query"]] = _normalise_query(op["spec"])
    elif kind == "set":
        if op["key"] not in ("token", "max_points"):
            raise KeyError("cannot set %s" % op["key"])
        world[op["key"]] = op["value"]
    else:
        raise ValueError("unknown prometheus op %r" % kind)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests, benchmarks and demos
# ---------------------------------------------------------------------------

def generate(params):
    """An SLI as two queries: parameters good_query, total_query, start (ISO or
    unix), steps, step (seconds, default 60), base (events per step, default
    1000), error_ratio (default 0.001), burn_from / burn_to (unix or ISO, steps
    ending in (from, to]) with burn_ratio, series, seed, token."""
    rng = random.Random(int(params.get("seed", 1)))
    step = int(params.get("step", 60))
    start = parse_time(params.get("start", "2024-01-01T00:00:00Z"))
    start = int(start) // step * step
    steps = int(params.get("steps", 1440))
    base = int(params.get("base", 1000))
    ratio = float(params.get("error_ratio", 0.001))
    burn_from = parse_time(params.get("burn_from"))
    burn_to = parse_time(params.get("burn_to"))
    burn_ratio = float(params.get("burn_ratio", 0.05))
    totals, goods = {}, {}
    for k in range(1, steps + 1):
        t = start + k * step
        total = max(base + rng.randint(-base // 10, base // 10), 0)
        r = burn_ratio if burn_from is not None and burn_from < t <= (burn_to or float("inf")) else ratio
        expected = total * r
        bad = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        totals[str(t)] = total
        goods[str(t)] = total - bad
    series = int(params.get("series", 1))
    return load_world({
        "token": params.get("token"),
        "queries": {
            params.get("total_query", "sum(increase(http_requests_total[1m]))"):
                {"values": totals, "series": series},
            params.get("good_query", 'sum(increase(http_requests_total{code!~"5.."}[1m]))'):
                {"values": goods, "series": series},
        }})

