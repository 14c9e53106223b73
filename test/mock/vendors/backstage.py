"""Backstage software catalog API (the parts the connector reads), served under /backstage.

The base URL a source uses is <mock>/backstage/api/catalog, as a real
Backstage serves the catalog at <backend>/api/catalog.

World:
    {"token": "secret" or null,
     "entities": [entity, ...]}
    entity: a catalog entity as Backstage returns it: apiVersion, kind,
      metadata {name, namespace, title, description, uid, etag, tags, annotations},
      spec {...}, relations [{type, targetRef}]; uid and etag are filled in
      when missing.

Fidelity: Bearer authentication (401 with Backstage's error envelope
{"error": {"name": "AuthenticationError", ...}, "request", "response"}
otherwise), GET /api/catalog/entities/by-query with filter parameters
(several are ORed; inside one, comma-separated key=value conditions are
ANDed, the same key repeated matches any of its values, a key alone
means "exists"; keys are dotted paths such as kind, spec.type,
metadata.annotations.backstage.io/source-template, and values compare
case-insensitively, as in the catalog backend), limit (default 20),
ordered by metadata.uid, and opaque cursors (base64 JSON holding the
filters and the uid to continue after, so that an entity removed between
two pages does not shift the next one); a request with a cursor ignores
its filter.  The body is {"items", "totalItems", "pageInfo":
{"nextCursor", "prevCursor"}}; nextCursor is absent on the last page.
A malformed cursor is a 400 InputError.
"""

import base64
import hashlib
import itertools
import json
import random
import urllib.parse

from vendors.common import NotFound, json_response

PREFIX = "backstage"

_versions = itertools.count(1)


def _uid(entity):
    key = "%s:%s/%s" % (entity["kind"], entity["metadata"].get("namespace", "default"), entity["metadata"]["name"])
    h = hashlib.sha256(key.lower().encode()).hexdigest()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def _normalise(entity):
    e = json.loads(json.dumps(entity))
    e.setdefault("apiVersion", "backstage.io/v1alpha1")
    md = e.setdefault("metadata", {})
    md.setdefault("namespace", "default")
    md.setdefault("uid", _uid(e))
    md.setdefault("etag", hashlib.sha1(json.dumps(e, sort_keys=True).encode()).hexdigest()[:24])
    e.setdefault("spec", {})
    e.setdefault("relations", [])
    return e


def empty_world():
    return {"token": None, "entities": [], "_version": next(_versions)}


def load_world(data):
    world = empty_world()
    world["token"] = data.get("token")
    world["entities"] = [_normalise(e) for e in data.get("entities", [])]
    return world


def _error(status, name, message, req):
    return json_response(status, {"error": {"name": name, "message": message},
                                  "request": {"method": req.method, "url": "/api/catalog" + req.path[len("/api/catalog"):]},
                                  "response": {"statusCode": status}})


def check_auth(world, req):
    world["_last_accept"] = req.headers.get("accept")
    token = world.get("token")
    if not token:
        return True
    return req.headers.get("authorization", "") == "Bearer " + token


def unauthorized(world, req):
    return _error(401, "AuthenticationError", "Missing credentials" if "authorization" not in req.headers
                  else "Invalid token", req)


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------

def _values_at(entity, key):
    """The values at a dotted key, lower-cased; annotations and labels keep
    their own dots (metadata.annotations.backstage.io/source-template)."""
    parts = key.split(".")
    node = entity
    for i, part in enumerate(parts):
        if isinstance(node, dict) and node is entity.get("metadata") and part in ("annotations", "labels"):
            rest = ".".join(parts[i + 1:])
            value = (node.get(part) or {}).get(rest)
            return None if value is None else [str(value).lower()]
        if isinstance(node, dict):
            if part not in node:
                # keys compare case-insensitively
                match = next((k for k in node if k.lower() == part.lower()), None)
                if match is None:
                    return None
                part = match
            node = node[part]
        else:
            return None
    if isinstance(node, list):
        return [str(v).lower() for v in node]
    if isinstance(node, dict):
        return []
    return [str(node).lower()]


def _parse_filter(text):
    """One filter parameter -> {key: [values] or None (exists)}."""
    conditions = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            conditions.setdefault(key, None)
        else:
            if conditions.get(key, []) is None:
                conditions[key] = []
            conditions.setdefault(key, []).append(value.strip().lower())
    return conditions


def _matches(entity, filters):
    if not filters:
        return True
    for f in filters:
        ok = True
        for key, wanted in f.items():
            have = _values_at(entity, key)
            if have is None:
                ok = False
            elif wanted and not any(v in have for v in wanted):
                ok = False
            if not ok:
                break
        if ok:
            return True
    return False


def _encode_cursor(state):
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _decode_cursor(text):
    try:
        state = json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
    except Exception:
        return None
    if not isinstance(state, dict) or "filters" not in state:
        return None
    return state


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def _by_query(world, req):
    try:
        limit = int(req.arg("limit", 20))
    except ValueError:
        return _error(400, "InputError", "Invalid limit, not a number", req)
    limit = max(limit, 0)
    cursor = req.arg("cursor")
    if cursor is not None:
        state = _decode_cursor(cursor)
        if state is None:
            return _error(400, "InputError", "Malformed cursor, could not be parsed", req)
        filters = state["filters"]
        after = state.get("after")
        total_items = state.get("total")
    else:
        filters = [_parse_filter(f) for f in req.query.get("filter", [])]
        after = None
        total_items = None
    selected = sorted((e for e in world["entities"] if _matches(e, filters)), key=lambda e: e["metadata"]["uid"])
    if total_items is None:
        total_items = len(selected)
    rest = [e for e in selected if after is None or e["metadata"]["uid"] > after]
    page = rest[:limit]
    page_info = {}
    if len(rest) > limit and page:
        page_info["nextCursor"] = _encode_cursor({"filters": filters, "after": page[-1]["metadata"]["uid"],
                                                  "total": total_items})
    if after is not None:
        page_info["prevCursor"] = _encode_cursor({"filters": filters, "before": page[0]["metadata"]["uid"] if page else after,
                                                  "total": total_items})
    return json_response(200, {"items": page, "totalItems": len(selected), "pageInfo": page_info})


def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    parts = [urllib.parse.unquote(p) for p in req.path.split("/") if p]
    if parts == ["api", "catalog", "entities", "by-query"]:
        return _by_query(world, req)
    return _error(404, "NotFoundError", "No route for %s" % req.path, req)


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

def _ref(e):
    return ("%s:%s/%s" % (e["kind"], e["metadata"].get("namespace", "default"), e["metadata"]["name"])).lower()


def mutate(world, op):
    """Ops: upsert {items} (by kind:namespace/name); remove {ref}; set {key, value} (token)."""
    kind = op["op"]
    if kind == "upsert":
        index = {_ref(e): i for i, e in enumerate(world["entities"])}
        for new in op["items"]:
            e = _normalise(new)
            if _ref(e) in index:
                old = world["entities"][index[_ref(e)]]
                e["metadata"]["uid"] = old["metadata"]["uid"]
                world["entities"][index[_ref(e)]] = e
            else:
                world["entities"].append(e)
    elif kind == "remove":
        before = len(world["entities"])
        world["entities"] = [e for e in world["entities"] if _ref(e) != op["ref"].lower()]
        if len(world["entities"]) == before:
            raise KeyError("no entity %s" % op["ref"])
    elif kind == "set":
        if op["key"] != "token":
            raise KeyError("cannot set %s" % op["key"])
        world["token"] = op["value"]
    else:
        raise ValueError("unknown backstage op %r" % kind)
    world["_version"] = next(_versions)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests and benchmarks
# ---------------------------------------------------------------------------

def catalog(components, teams, users_per_team=2, templates=("service-template",), token=None):
    """A catalog from plain descriptions: components [{name, team, type, lifecycle,
    template, annotations, tags}], teams [name]; each team gets a Group with
    users, each template a Template entity."""
    entities = [{"kind": "Group", "metadata": {"name": "engineering", "title": "Engineering"},
                 "spec": {"type": "department", "children": ["group:default/" + t for t in teams]}}]
    for t in teams:
        members = ["%s-dev%d" % (t, k + 1) for k in range(users_per_team)]
        entities.append({"kind": "Group", "metadata": {"name": t, "title": t.replace("-", " ").title()},
                         "spec": {"type": "team", "parent": "engineering", "children": [],
                                  "profile": {"displayName": t.replace("-", " ").title(),
                                              "email": "%s@acme.example" % t},
                                  "members": members},
                         "relations": [{"type": "childOf", "targetRef": "group:default/engineering"}]
                         + [{"type": "hasMember", "targetRef": "user:default/" + m} for m in members]})
        for m in members:
            entities.append({"kind": "User", "metadata": {"name": m},
                             "spec": {"profile": {"displayName": m.replace("-", " ").title(),
                                                  "email": "%s@acme.example" % m},
                                      "memberOf": [t]},
                             "relations": [{"type": "memberOf", "targetRef": "group:default/" + t}]})
    for name in templates:
        entities.append({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
                         "metadata": {"name": name, "title": name.replace("-", " ").title(), "tags": ["recommended"]},
                         "spec": {"owner": "group:default/platform", "type": "service",
                                  "parameters": [{"title": "Name", "required": ["name"],
                                                  "properties": {"name": {"type": "string"}}}],
                                  "steps": [{"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton"}}]}})
    for c in components:
        annotations = dict(c.get("annotations", {}))
        if c.get("template"):
            annotations["backstage.io/source-template"] = "template:default/" + c["template"]
        relations = [{"type": "ownedBy", "targetRef": "group:default/" + c["team"]}]
        spec = {"type": c.get("type", "service"), "lifecycle": c.get("lifecycle", "production"),
                "owner": c["team"]}
        if c.get("system"):
            spec["system"] = c["system"]
            relations.append({"type": "partOf", "targetRef": "system:default/" + c["system"]})
        entities.append({"kind": "Component",
                         "metadata": {"name": c["name"], "title": c.get("title"), "annotations": annotations,
                                      "tags": c.get("tags", []), "description": c.get("description")},
                         "spec": spec, "relations": relations})
    for e in entities:
        md = e["metadata"]
        for key in [k for k, v in md.items() if v is None]:
            del md[key]
    return load_world({"token": token, "entities": entities})


def generate(params):
    """Parameters: seed, components, teams, templates, deprecated (share), templated (share), token."""
    rng = random.Random(int(params.get("seed", 1)))
    n = int(params.get("components", 20))
    teams = ["team-%d" % (k + 1) for k in range(max(int(params.get("teams", 3)), 1))]
    templates = ["template-%d" % (k + 1) for k in range(max(int(params.get("templates", 2)), 1))]
    deprecated = float(params.get("deprecated", 0.1))
    templated = float(params.get("templated", 0.5))
    components = []
    for k in range(n):
        components.append({"name": "svc-%03d" % (k + 1), "team": rng.choice(teams),
                           "type": "service" if rng.random() < 0.8 else rng.choice(["website", "library"]),
                           "lifecycle": "deprecated" if rng.random() < deprecated else "production",
                           "template": rng.choice(templates) if rng.random() < templated else None,
                           "tags": sorted(rng.sample(["java", "python", "go", "grpc", "pci"], 2))})
    return catalog(components, teams, templates=templates, token=params.get("token"))
