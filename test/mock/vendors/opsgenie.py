"""Opsgenie Incident API v1 (the parts the connector reads), served under /opsgenie.

World:
    {"token": "secret" or null,
     "rate_limit": {"limit": 10, "period": 60} or null,
     "incidents": [incident, ...]}
    incident: id, tinyId, message, status (open|resolved|closed|...), priority (P1..P5),
      createdAt, updatedAt, impactStartDate, impactEndDate (ISO, any offset, or absent),
      impactedServices [ids], tags [..], ownerTeam

Fidelity: GenieKey authentication (401 {"message": "Could not authenticate"}
otherwise), GET /v1/incidents with a mandatory query (422 without one), a
small subset of the search syntax (field:value terms joined by AND / OR over
status, priority, impactedServices, tag, message; "*" or empty matches all),
offset/limit (default 20, max 100), sort (createdAt default) and order
(desc default), paging {first, last, next} in the body and X-Paging-*
headers with absolute URLs, envelope {data, paging, took, requestId,
totalCount}, GET /v1/incidents/{id}?identifierType=id|tiny, and rate
limits as Opsgenie signals them: X-RateLimit-State on every response and,
when the bucket is empty, 429 {"message": "TooManyRequests"} with
X-RateLimit-State: THROTTLED, X-RateLimit-Reason and
X-RateLimit-Period-In-Sec (no reset time, no Retry-After).  Times are
written with milliseconds, as Opsgenie does, unless the fixture says
otherwise.
"""

import datetime
import itertools
import random
import re
import time
import urllib.parse
import uuid

from vendors.common import NotFound, json_response, parse_time

PREFIX = "opsgenie"

_versions = itertools.count(1)
_request_ids = itertools.count(1)

FIELDS = {"status": "status", "priority": "priority", "impactedServices": "impactedServices",
          "tag": "tags", "tags": "tags", "message": "message"}


def empty_world():
    return {"token": None, "rate_limit": None, "incidents": [], "_version": next(_versions)}


def load_world(data):
    world = empty_world()
    world.update({"token": data.get("token"), "rate_limit": data.get("rate_limit"),
                  "incidents": [dict(i) for i in data.get("incidents", [])]})
    return world


def _envelope(extra):
    body = {"took": 0.012, "requestId": str(uuid.UUID(int=next(_request_ids)))}
    body.update(extra)
    return body


# ---------------------------------------------------------------------------
# Authentication, rate limits, errors
# ---------------------------------------------------------------------------

def check_auth(world, req):
    world["_last_accept"] = req.headers.get("accept")
    token = world.get("token")
    if not token:
        return True
    return req.headers.get("authorization", "") == "GenieKey " + token


def unauthorized(world, req):
    return json_response(401, _envelope({"message": "Could not authenticate"}))


def common_headers(world, req):
    return [("X-RateLimit-State", "OK"), ("X-Request-ID", str(uuid.UUID(int=next(_request_ids))))]


def _throttled(world):
    rl = world.get("rate_limit")
    if not rl:
        return None
    now = time.time()
    period = float(rl.get("period", 60))
    if rl.get("_start") is None or now >= rl["_start"] + period:
        rl["_start"] = now
        rl["_used"] = 0
    if rl["_used"] >= int(rl.get("limit", 10)):
        resp = json_response(429, _envelope({"message": "TooManyRequests"}),
                             [("X-RateLimit-State", "THROTTLED"), ("X-RateLimit-Reason", "INCIDENT"),
                              ("X-RateLimit-Period-In-Sec", str(int(period)))])
        resp.skip_vendor_headers = True
        return resp
    rl["_used"] += 1
    return None


# ---------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------

def _term_matches(inc, term):
    field, sep, value = term.partition(":")
    if not sep:
        return term.lower() in (inc.get("message") or "").lower()
    key = FIELDS.get(field.strip())
    if key is None:
        raise ValueError(field)
    value = value.strip().strip('"')
    have = inc.get(key)
    if isinstance(have, list):
        return value in have
    return str(have) == value


def _matcher(query):
    """A predicate for a query: OR of ANDs of field:value terms."""
    text = (query or "").strip()
    if text in ("", "*"):
        return lambda inc: True
    alternatives = [[t for t in re.split(r"\s+AND\s+", alt.strip()) if t]
                    for alt in re.split(r"\s+OR\s+", text)]
    for alt in alternatives:
        for term in alt:
            field, sep, _ = term.partition(":")
            if sep and field.strip() not in FIELDS:
                raise ValueError(field)
    return lambda inc: any(all(_term_matches(inc, t) for t in alt) for alt in alternatives)


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------

def _incident_json(inc):
    obj = {"id": inc["id"], "serviceId": (inc.get("impactedServices") or [None])[0],
           "tinyId": inc.get("tinyId"), "message": inc.get("message"), "status": inc.get("status"),
           "tags": inc.get("tags", []), "createdAt": inc.get("createdAt"),
           "updatedAt": inc.get("updatedAt") or inc.get("createdAt"), "priority": inc.get("priority", "P3"),
           "ownerTeam": inc.get("ownerTeam", ""), "responders": [{"type": "team", "id": "team-1"}],
           "extraProperties": {}, "links": {"web": "https://acme.app.opsgenie.com/incident/detail/" + inc["id"],
                                             "api": "https://api.opsgenie.com/v1/incidents/" + inc["id"]},
           "impactedServices": inc.get("impactedServices", []), "actions": []}
    for key in ("impactStartDate", "impactEndDate"):
        if inc.get(key) is not None:
            obj[key] = inc[key]
    return obj


def _page_url(req, offset):
    query = [(k, v) for k, vs in req.query.items() for v in vs if k != "offset"]
    query.append(("offset", str(offset)))
    return "%s%s?%s" % (req.base, req.path, urllib.parse.urlencode(query))


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def _list(world, req):
    if req.arg("query") is None:
        return json_response(422, _envelope({"message": "Query must be provided."}))
    try:
        match = _matcher(req.arg("query"))
    except ValueError as e:
        return json_response(422, _envelope({"message": "Invalid query: unknown field [%s]" % e}))
    try:
        offset = max(int(req.arg("offset", 0)), 0)
        limit = min(max(int(req.arg("limit", 20)), 1), 100)
    except ValueError:
        return json_response(422, _envelope({"message": "offset and limit must be integers"}))
    sort = req.arg("sort", "createdAt")
    if sort not in ("createdAt", "updatedAt", "tinyId", "status", "priority", "message"):
        return json_response(422, _envelope({"message": "Invalid sort field [%s]" % sort}))
    desc = req.arg("order", "desc") != "asc"
    selected = [i for i in world["incidents"] if match(i)]
    if sort in ("createdAt", "updatedAt"):
        key = lambda i: (parse_time(i.get(sort) or i["createdAt"]), i["id"])
    else:
        key = lambda i: (str(i.get(sort)), i["id"])
    selected.sort(key=key, reverse=desc)
    items = selected[offset:offset + limit]
    last = max((len(selected) - 1) // limit * limit, 0)
    paging = {"first": _page_url(req, 0), "last": _page_url(req, last)}
    if offset + limit < len(selected):
        paging["next"] = _page_url(req, offset + limit)
    if offset > 0:
        paging["prev"] = _page_url(req, max(offset - limit, 0))
    headers = [("X-Paging-First", paging["first"]), ("X-Paging-Last", paging["last"])]
    if "next" in paging:
        headers.append(("X-Paging-Next", paging["next"]))
    return json_response(200, _envelope({"data": [_incident_json(i) for i in items], "paging": paging,
                                         "totalCount": len(selected)}), headers)


def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    throttled = _throttled(world)
    if throttled is not None:
        return throttled
    parts = [urllib.parse.unquote(p) for p in req.path.split("/") if p]
    if parts == ["v1", "incidents"]:
        return _list(world, req)
    if len(parts) == 3 and parts[:2] == ["v1", "incidents"]:
        kind = req.arg("identifierType", "id")
        key = "tinyId" if kind == "tiny" else "id"
        inc = next((i for i in world["incidents"] if str(i.get(key)) == parts[2]), None)
        if inc is None:
            return json_response(404, _envelope({"message": "Incident with %s [%s] not found." % (kind, parts[2])}))
        return json_response(200, _envelope({"data": _incident_json(inc)}))
    return json_response(404, _envelope({"message": "Could not find the requested resource."}))


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

def mutate(world, op):
    """Ops: upsert {items}; resolve / close {id, at} (impactEndDate and updatedAt = at);
    delete {id}; set {key, value} (token, rate_limit)."""
    kind = op["op"]
    if kind == "upsert":
        index = {inc["id"]: inc for inc in world["incidents"]}
        for new in op["items"]:
            if new["id"] in index:
                index[new["id"]].update(new)
            else:
                world["incidents"].append(dict(new))
    elif kind in ("resolve", "close"):
        inc = next((i for i in world["incidents"] if i["id"] == op["id"]), None)
        if inc is None:
            raise KeyError("no incident %s" % op["id"])
        inc["status"] = "resolved" if kind == "resolve" else "closed"
        inc["updatedAt"] = op["at"]
        if kind == "resolve" or "impactEndDate" not in inc:
            inc["impactEndDate"] = op["at"]
    elif kind == "delete":
        world["incidents"] = [i for i in world["incidents"] if i["id"] != op["id"]]
    elif kind == "set":
        if op["key"] not in ("token", "rate_limit"):
            raise KeyError("cannot set %s" % op["key"])
        world[op["key"]] = op["value"]
    else:
        raise ValueError("unknown opsgenie op %r" % kind)
    world["_version"] = next(_versions)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests and benchmarks
# ---------------------------------------------------------------------------

def _iso_ms(epoch):
    dt = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def generate(params):
    """Parameters: seed, incidents, start (ISO), span_days, services, open (the newest n are
    open), closed_ratio (of the others, closed rather than resolved), token."""
    rng = random.Random(int(params.get("seed", 1)))
    n = int(params.get("incidents", 0))
    start = parse_time(params.get("start", "2024-01-01T00:00:00Z"))
    span = float(params.get("span_days", 60)) * 86400
    n_services = max(int(params.get("services", 3)), 1)
    n_open = int(params.get("open", 0))
    closed_ratio = float(params.get("closed_ratio", 0.3))
    services = [str(uuid.UUID(int=0x5e7 << 64 | k + 1)) for k in range(n_services)]
    incidents = []
    for k in range(n):
        t = start + span * k / max(n, 1) + rng.uniform(0, span / max(n, 1) / 2)
        t = round(t, 3)
        inc = {"id": str(uuid.UUID(int=0x1c1 << 64 | k + 1)), "tinyId": str(k + 1),
               "message": "Incident %d" % (k + 1), "priority": "P%d" % rng.randint(1, 5),
               "createdAt": _iso_ms(t), "impactStartDate": _iso_ms(t),
               "impactedServices": [services[rng.randrange(n_services)]], "tags": ["generated"]}
        if k >= n - n_open:
            inc["status"] = "open"
            inc["updatedAt"] = _iso_ms(t)
        else:
            end = t + rng.randint(60, 7200)
            inc["status"] = "closed" if rng.random() < closed_ratio else "resolved"
            inc["impactEndDate"] = _iso_ms(end)
            inc["updatedAt"] = _iso_ms(end + (rng.randint(60, 600) if inc["status"] == "closed" else 0))
        incidents.append(inc)
    return load_world({"token": params.get("token"), "incidents": incidents})
