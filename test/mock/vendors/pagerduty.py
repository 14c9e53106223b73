"""PagerDuty REST API v2 (the parts the connector reads), served under /pagerduty.

World:
    {"token": "secret" or null,
     "time_zone": "+02:00",             # offset timestamps are rendered in (the account's
                                        #   time zone; "Z" or null for UTC)
     "rate_limit": {"limit": 960, "period": 60, "headers_on_429": true} or null,
     "incidents": [incident, ...]}
    incident: id, incident_number, title, status (triggered|acknowledged|resolved|...),
      urgency, created_at, updated_at, last_status_change_at, resolved_at (ISO, any offset),
      service {id, summary}, priority {summary} or null, teams [names], assignees [names],
      log_entries [{type, created_at, agent}] (any order; rendered newest first)

Fidelity: Token authentication (401 with PagerDuty's error object otherwise),
classic offset pagination (limit default 25, max 100; the response echoes
limit, offset, more and total (null unless total=true)), 400 when
offset + limit > 10,000, since/until on created_at with a range of at most
6 months (400 beyond), statuses[] / urgencies[] / service_ids[] filters,
sort_by created_at|incident_number[:asc|:desc], GET /incidents/{id or
number}, log entries (is_overview keeps the major ones) paged the same way,
ratelimit-limit/-remaining/-reset (seconds until reset) on every response
and a 429 with {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
when a fixed window's budget is spent (headers optional, as some real 429s
lack them), and timestamps rendered in the account's offset.
"""

import datetime
import itertools
import random
import time
import urllib.parse

from vendors.common import NotFound, json_response, parse_time

PREFIX = "pagerduty"

_versions = itertools.count(1)

MAX_RANGE = 184 * 86400         # "6 months"
OFFSET_CAP = 10000
OVERVIEW_TYPES = {"trigger_log_entry", "acknowledge_log_entry", "resolve_log_entry",
                  "escalate_log_entry", "assign_log_entry", "unacknowledge_log_entry"}


def empty_world():
    return {"token": None, "time_zone": None, "rate_limit": None, "incidents": [],
            "_version": next(_versions)}


def load_world(data):
    world = empty_world()
    world.update({"token": data.get("token"), "time_zone": data.get("time_zone"),
                  "rate_limit": data.get("rate_limit"),
                  "incidents": [dict(i) for i in data.get("incidents", [])]})
    return world


# ---------------------------------------------------------------------------
# Authentication, rate limits, errors
# ---------------------------------------------------------------------------

def _error(status, message, code, errors=None):
    body = {"error": {"message": message, "code": code}}
    if errors:
        body["error"]["errors"] = errors
    return json_response(status, body)


def check_auth(world, req):
    world["_last_accept"] = req.headers.get("accept")
    token = world.get("token")
    if not token:
        return True
    return req.headers.get("authorization", "") == "Token token=" + token


def unauthorized(world, req):
    return _error(401, "Unauthorized", 2006)


def _rate_state(world):
    """(limit, remaining, seconds to reset) of the current fixed window, or None."""
    rl = world.get("rate_limit")
    if not rl:
        return None
    now = time.time()
    period = float(rl.get("period", 60))
    start = rl.get("_start")
    if start is None or now >= start + period:
        rl["_start"] = start = now
        rl["_used"] = 0
    remaining = int(rl.get("limit", 960)) - rl.get("_used", 0)
    return int(rl.get("limit", 960)), remaining, max(int(start + period - now + 0.999), 1)


def common_headers(world, req):
    state = _rate_state(world)
    if state is None:
        return [("ratelimit-limit", "960"), ("ratelimit-remaining", "959"), ("ratelimit-reset", "60")]
    limit, remaining, reset = state
    return [("ratelimit-limit", str(limit)), ("ratelimit-remaining", str(max(remaining, 0))),
            ("ratelimit-reset", str(reset))]


def _throttled(world):
    """A 429 when this request is over the window's budget, else None (and count it)."""
    state = _rate_state(world)
    if state is None:
        return None
    limit, remaining, reset = state
    if remaining <= 0:
        resp = _error(429, "Rate Limit Exceeded", 2020)
        if world["rate_limit"].get("headers_on_429", True):
            resp.headers = [("ratelimit-limit", str(limit)), ("ratelimit-remaining", "0"),
                            ("ratelimit-reset", str(reset))]
        resp.skip_vendor_headers = True
        return resp
    world["rate_limit"]["_used"] = world["rate_limit"].get("_used", 0) + 1
    return None


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------

def _render_time(world, value):
    """A stored time rendered the way the account's time zone shows it."""
    if value is None:
        return None
    epoch = parse_time(value)
    tz = world.get("time_zone")
    if not tz or tz == "Z":
        return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = -1 if tz[0] == "-" else 1
    hours, _, minutes = tz[1:].partition(":")
    offset = datetime.timedelta(hours=int(hours), minutes=int(minutes or 0)) * sign
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone(offset)).isoformat()


def _ref(kind, obj_id, summary, path):
    return {"id": obj_id, "type": kind + "_reference", "summary": summary,
            "self": "https://api.pagerduty.com/%s/%s" % (path, obj_id),
            "html_url": "https://acme.pagerduty.com/%s/%s" % (path, obj_id)}


def _user(name):
    uid = "PU" + "".join(c for c in name.upper() if c.isalnum())[:5]
    return _ref("user", uid, name, "users")


def _entries_sorted(inc):
    return sorted(inc.get("log_entries", []), key=lambda e: parse_time(e["created_at"]), reverse=True)


def _incident_json(world, inc):
    service = inc.get("service") or {"id": "PSVC001", "summary": "Default Service"}
    acks = []
    if inc.get("status") == "acknowledged":
        for e in _entries_sorted(inc):
            if e["type"] == "acknowledge_log_entry":
                acks.append({"at": _render_time(world, e["created_at"]),
                             "acknowledger": _user(e.get("agent") or "Someone")})
                break
    trigger = next((e for e in inc.get("log_entries", []) if e["type"] == "trigger_log_entry"), None)
    obj = {
        "id": inc["id"], "type": "incident",
        "summary": "[#%s] %s" % (inc.get("incident_number"), inc.get("title")),
        "self": "https://api.pagerduty.com/incidents/" + inc["id"],
        "html_url": "https://acme.pagerduty.com/incidents/" + inc["id"],
        "incident_number": inc.get("incident_number"), "title": inc.get("title"),
        "description": inc.get("title"),
        "created_at": _render_time(world, inc.get("created_at")),
        "updated_at": _render_time(world, inc.get("updated_at") or inc.get("created_at")),
        "status": inc.get("status"),
        "incident_key": inc.get("incident_key", "key-" + inc["id"].lower()),
        "service": _ref("service", service["id"], service.get("summary"), "service-directory"),
        "assignments": [{"at": _render_time(world, inc.get("created_at")), "assignee": _user(a)}
                        for a in inc.get("assignees", [])] if inc.get("status") != "resolved" else [],
        "assigned_via": "escalation_policy",
        "last_status_change_at": _render_time(world, inc.get("last_status_change_at") or inc.get("created_at")),
        "resolved_at": _render_time(world, inc.get("resolved_at")),
        "first_trigger_log_entry": {"id": "R" + inc["id"] + "T", "type": "trigger_log_entry_reference",
                                    "summary": trigger.get("summary", "Triggered through the API.") if trigger
                                    else "Triggered through the API."},
        "alert_counts": {"all": 1, "triggered": 0 if inc.get("status") == "resolved" else 1,
                         "resolved": 1 if inc.get("status") == "resolved" else 0},
        "pending_actions": [], "is_mergeable": True,
        "escalation_policy": _ref("escalation_policy", "PEP0001", "Default", "escalation_policies"),
        "teams": [_ref("team", "PT" + str(k), t, "teams") for k, t in enumerate(inc.get("teams", []))],
        "acknowledgements": acks,
        "last_status_change_by": _ref("service", service["id"], service.get("summary"), "service-directory"),
        "urgency": inc.get("urgency", "high"),
        "priority": (dict(_ref("priority", "PPRIO" + inc["priority"]["summary"], inc["priority"]["summary"],
                                "priorities"))
                     if isinstance(inc.get("priority"), dict) else inc.get("priority")),
        "resolve_reason": None,
        "incidents_responders": [], "responder_requests": [], "subscriber_requests": [],
        "conference_bridge": None,
    }
    for key in ("status", "urgency", "title", "created_at", "service"):
        # fixtures may carry odd values on purpose (nulls, unknown enums)
        if key in inc.get("raw", {}):
            obj[key] = inc["raw"][key]
    return obj


def _entry_json(world, inc, e, k):
    kind = e["type"]
    obj = {"id": "R%s%02d" % (inc["id"], k), "type": kind,
           "summary": e.get("summary") or kind.replace("_log_entry", "").capitalize() + "d",
           "self": "https://api.pagerduty.com/log_entries/R%s%02d" % (inc["id"], k),
           "html_url": None, "created_at": _render_time(world, e["created_at"]),
           "channel": {"type": e.get("channel", "website")},
           "service": _ref("service", (inc.get("service") or {}).get("id", "PSVC001"),
                           (inc.get("service") or {}).get("summary"), "service-directory"),
           "incident": _ref("incident", inc["id"], "[#%s] %s" % (inc.get("incident_number"), inc.get("title")),
                            "incidents"),
           "teams": [], "contexts": [], "event_details": {}}
    if e.get("agent"):
        obj["agent"] = _user(e["agent"])
    return obj


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def _page_params(req):
    """(limit, offset, error response or None), with PagerDuty's rules."""
    try:
        limit = int(req.arg("limit", 25))
        offset = int(req.arg("offset", 0))
    except ValueError:
        return None, None, _error(400, "Invalid Input Provided", 2001, ["limit and offset must be integers"])
    limit = min(max(limit, 1), 100)
    if offset < 0:
        return None, None, _error(400, "Invalid Input Provided", 2001, ["Offset must not be negative."])
    if offset + limit > OFFSET_CAP:
        return None, None, _error(400, "Invalid Input Provided", 2001,
                                  ["Offset must be less than or equal to %d minus limit." % OFFSET_CAP])
    return limit, offset, None


def _list_values(req, name):
    return req.query.get(name + "[]", []) + req.query.get(name, [])


def _list_incidents(world, req):
    limit, offset, err = _page_params(req)
    if err:
        return err
    now = time.time()
    if req.arg("date_range") == "all":
        since, until = None, None
    else:
        try:
            until = parse_time(req.arg("until")) if req.arg("until") else None
            since = parse_time(req.arg("since")) if req.arg("since") else None
        except ValueError:
            return _error(400, "Invalid Input Provided", 2001, ["since and until must be ISO 8601 times."])
        if since is None and until is None:
            since, until = now - 30 * 86400, now
        elif until is None:
            until = min(since + 30 * 86400, now) if since < now else since
        elif since is None:
            since = until - 30 * 86400
        if until < since:
            return _error(400, "Invalid Input Provided", 2001, ["until must be after since."])
        if until - since > MAX_RANGE:
            return _error(400, "Invalid Input Provided", 2001, ["Date range is greater than 6 months."])
    statuses = set(_list_values(req, "statuses"))
    urgencies = set(_list_values(req, "urgencies"))
    services = set(_list_values(req, "service_ids"))
    selected = []
    for inc in world["incidents"]:
        created = parse_time(inc["created_at"])
        if since is not None and not (since <= created < until):
            continue
        if statuses and inc.get("status") not in statuses:
            continue
        if urgencies and inc.get("urgency", "high") not in urgencies:
            continue
        if services and (inc.get("service") or {}).get("id") not in services:
            continue
        selected.append(inc)
    field, _, direction = (req.arg("sort_by") or "created_at:asc").partition(":")
    if field not in ("created_at", "incident_number", "resolved_at", "urgency"):
        return _error(400, "Invalid Input Provided", 2001, ["sort_by is not valid."])
    if field == "created_at":
        key = lambda i: (parse_time(i["created_at"]), i.get("incident_number") or 0)
    elif field == "resolved_at":
        key = lambda i: (parse_time(i["resolved_at"]) if i.get("resolved_at") else 0, i.get("incident_number") or 0)
    elif field == "urgency":
        key = lambda i: (i.get("urgency", "high"), i.get("incident_number") or 0)
    else:
        key = lambda i: i.get("incident_number") or 0
    selected.sort(key=key, reverse=direction == "desc")
    items = selected[offset:offset + limit]
    return json_response(200, {"incidents": [_incident_json(world, i) for i in items],
                               "limit": limit, "offset": offset, "more": offset + limit < len(selected),
                               "total": len(selected) if req.arg("total") == "true" else None})


def _find(world, ident):
    for inc in world["incidents"]:
        if inc["id"] == ident or str(inc.get("incident_number")) == ident:
            return inc
    return None


def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    throttled = _throttled(world)
    if throttled is not None:
        return throttled
    parts = [urllib.parse.unquote(p) for p in req.path.split("/") if p]
    if parts == ["incidents"]:
        return _list_incidents(world, req)
    if len(parts) in (2, 3) and parts[0] == "incidents":
        inc = _find(world, parts[1])
        if inc is None:
            return _error(404, "Incident Not Found", 5001)
        if len(parts) == 2:
            return json_response(200, {"incident": _incident_json(world, inc)})
        if parts[2] != "log_entries":
            raise NotFound()
        limit, offset, err = _page_params(req)
        if err:
            return err
        entries = _entries_sorted(inc)
        if req.arg("is_overview") == "true":
            entries = [e for e in entries if e["type"] in OVERVIEW_TYPES]
        page = entries[offset:offset + limit]
        return json_response(200, {"log_entries": [_entry_json(world, inc, e, offset + k) for k, e in enumerate(page)],
                                   "limit": limit, "offset": offset, "more": offset + limit < len(entries),
                                   "total": len(entries) if req.arg("total") == "true" else None})
    return _error(404, "Not Found", 2100)


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

def mutate(world, op):
    """Ops: upsert {items}; acknowledge {id, at, agent}; resolve {id, at, agent};
    delete {id}; set {key, value} (token, time_zone, rate_limit)."""
    kind = op["op"]
    if kind == "upsert":
        index = {inc["id"]: inc for inc in world["incidents"]}
        for new in op["items"]:
            if new["id"] in index:
                index[new["id"]].update(new)
            else:
                world["incidents"].append(dict(new))
    elif kind in ("acknowledge", "resolve"):
        inc = _find(world, op["id"])
        if inc is None:
            raise KeyError("no incident %s" % op["id"])
        entry = "acknowledge_log_entry" if kind == "acknowledge" else "resolve_log_entry"
        inc.setdefault("log_entries", []).append({"type": entry, "created_at": op["at"],
                                                  "agent": op.get("agent", "Ada Lovelace")})
        inc["status"] = "acknowledged" if kind == "acknowledge" else "resolved"
        inc["last_status_change_at"] = inc["updated_at"] = op["at"]
        if kind == "resolve":
            inc["resolved_at"] = op["at"]
    elif kind == "delete":
        world["incidents"] = [i for i in world["incidents"] if i["id"] != op["id"]]
    elif kind == "set":
        if op["key"] not in ("token", "time_zone", "rate_limit"):
            raise KeyError("cannot set %s" % op["key"])
        world[op["key"]] = op["value"]
    else:
        raise ValueError("unknown pagerduty op %r" % kind)
    world["_version"] = next(_versions)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests and benchmarks
# ---------------------------------------------------------------------------

def _iso_z(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(params):
    """Parameters: seed, incidents, start (ISO), span_days, services, open (the newest n are
    not resolved; every other one of them acknowledged), ack_ratio (of resolved ones),
    time_zone, token, burst (that many extra incidents created in the same minute at the
    middle of the span, to cross the 10,000 offset cap inside one window)."""
    rng = random.Random(int(params.get("seed", 1)))
    n = int(params.get("incidents", 0))
    burst = int(params.get("burst", 0))
    start = parse_time(params.get("start", "2024-01-01T00:00:00Z"))
    span = float(params.get("span_days", 60)) * 86400
    n_services = max(int(params.get("services", 3)), 1)
    n_open = int(params.get("open", 0))
    ack_ratio = float(params.get("ack_ratio", 0.6))
    services = [{"id": "PSVC%03d" % (k + 1), "summary": "Service %d" % (k + 1)} for k in range(n_services)]
    times = [start + span * k / max(n, 1) + rng.uniform(0, span / max(n, 1) / 2) for k in range(n)]
    times += [start + span / 2 + rng.uniform(0, 59) for _ in range(burst)]
    times.sort()
    incidents = []
    total = len(times)
    for k, t in enumerate(times):
        number = k + 1
        inc = {"id": "Q%07d" % number, "incident_number": number, "title": "Incident %d" % number,
               "urgency": "high" if rng.random() < 0.3 else "low",
               "service": services[rng.randrange(n_services)], "created_at": _iso_z(t),
               "priority": {"summary": "P%d" % rng.randint(1, 5)} if rng.random() < 0.5 else None,
               "assignees": ["Ada Lovelace"],
               "log_entries": [{"type": "trigger_log_entry", "created_at": _iso_z(t), "agent": None,
                                "channel": "api"}]}
        is_open = k >= total - n_open
        acked = (is_open and (total - k) % 2 == 0) or (not is_open and rng.random() < ack_ratio)
        last = t
        if acked:
            last = t + rng.randint(30, 900)
            inc["log_entries"].append({"type": "acknowledge_log_entry", "created_at": _iso_z(last),
                                       "agent": "Grace Hopper"})
        if is_open:
            inc["status"] = "acknowledged" if acked else "triggered"
        else:
            last = last + rng.randint(60, 7200)
            inc["status"] = "resolved"
            inc["resolved_at"] = _iso_z(last)
            inc["log_entries"].append({"type": "resolve_log_entry", "created_at": _iso_z(last),
                                       "agent": "Grace Hopper" if acked else None,
                                       "channel": "website" if acked else "auto"})
        inc["last_status_change_at"] = inc["updated_at"] = _iso_z(last)
        incidents.append(inc)
    return load_world({"token": params.get("token"), "time_zone": params.get("time_zone"),
                       "incidents": incidents})
