"""GitLab REST API v4 (the parts the connector reads), served under /gitlab.

The prefix stands for the API root, https://gitlab.example.com/api/v4.

World:
    {"token": "secret" or null,
     "count_limit": 10000,              # above this many records, x-total,
                                        #   x-total-pages and rel="last" are left out
     "projects": {"group/name": {
         "id": 42,
         "pipelines": [pipeline, ...],  # the single-pipeline shape: id, iid, status, source,
                                        #   ref, sha, name, created_at, updated_at, started_at,
                                        #   finished_at, duration, queued_duration, before_sha, tag
         "deployments": [dep, ...],     # id, iid, ref, sha, status, created_at, updated_at,
                                        #   environment (name), job {id, status, created_at,
                                        #   started_at, finished_at}, pipeline_id
         "merge_requests": [mr, ...],   # iid, id, title, state, author, created_at, updated_at,
                                        #   merged_at, closed_at, merge_commit_sha,
                                        #   squash_commit_sha, sha, source_branch,
                                        #   target_branch, commits: [sha, ...]
         "commits": [commit, ...]}}}    # linear history, oldest first: id, title, message,
                                        #   author_name, author_email, authored_date,
                                        #   committer_name, committed_date

Fidelity (gitlabhq doc/api/rest, pipelines.md, deployments.md,
merge_requests.md, commits.md): the project is addressed by id or by its
URL-encoded path (an unencoded slash is a 404, as on GitLab); offset
pagination with per_page (default 20, max 100), x-page, x-per-page,
x-next-page (empty on the last page), x-prev-page, x-total, x-total-pages
and a Link header, where x-total, x-total-pages and rel="last" are missing
above count_limit records; list items of pipelines are slim (no
started_at/finished_at/duration); updated_after/updated_before are strict
for pipelines and deployments and inclusive for merge requests; order_by
and sort with GitLab's defaults (pipelines id desc, deployments id asc,
merge requests created_at desc) and id as the tie-breaker; RateLimit-*
headers on every response; 401 {"message": "401 Unauthorized"} for a
wrong PRIVATE-TOKEN or Bearer token.
"""

import bisect
import hashlib
import itertools
import random
import time
import urllib.parse

from vendors.common import NotFound, iso, json_response, parse_time

PREFIX = "gitlab"

_versions = itertools.count(1)
_started = int(time.time())

PIPELINE_LIST_FIELDS = ("id", "iid", "project_id", "sha", "ref", "status", "source",
                        "created_at", "updated_at", "web_url", "name")


def empty_world():
    return {"token": None, "count_limit": 10000, "projects": {}, "_version": next(_versions)}


def _project(data, path):
    return {"id": data.get("id", 1), "path": path,
            "pipelines": list(data.get("pipelines", [])),
            "deployments": list(data.get("deployments", [])),
            "merge_requests": list(data.get("merge_requests", [])),
            "commits": list(data.get("commits", []))}


def load_world(data):
    world = empty_world()
    world["token"] = data.get("token")
    world["count_limit"] = int(data.get("count_limit", 10000))
    for path, project in (data.get("projects") or {}).items():
        world["projects"][path] = _project(project, path)
    return world


# ---------------------------------------------------------------------------
# Authentication and common headers
# ---------------------------------------------------------------------------

def check_auth(world, req):
    token = world.get("token")
    if not token:
        return True
    return (req.headers.get("private-token") == token
            or req.headers.get("authorization") == "Bearer " + token)


def unauthorized(world, req):
    return json_response(401, {"message": "401 Unauthorized"})


def common_headers(world, req):
    rate = world.setdefault("rate", {"limit": 2000, "observed": 0})
    rate["observed"] = min(rate["observed"] + 1, rate["limit"] - 1)
    now = int(time.time())
    return [("RateLimit-Name", "throttle_authenticated_api"),
            ("RateLimit-Limit", str(rate["limit"])),
            ("RateLimit-Observed", str(rate["observed"])),
            ("RateLimit-Remaining", str(rate["limit"] - rate["observed"])),
            ("RateLimit-Reset", str(now - now % 60 + 60))]


# ---------------------------------------------------------------------------
# Offset pagination
# ---------------------------------------------------------------------------

def _page_url(req, page):
    query = [(k, v) for k, vs in req.query.items() for v in vs if k != "page"]
    query.append(("page", str(page)))
    return "%s%s?%s" % (req.base, req.path, urllib.parse.urlencode(query))


def _int_arg(req, name, default):
    try:
        return int(req.arg(name, default))
    except ValueError:
        return default


def paginate(world, req, items):
    """(slice, headers): GitLab's offset pagination headers for the request's page."""
    per_page = min(max(_int_arg(req, "per_page", 20), 1), 100)
    page = max(_int_arg(req, "page", 1), 1)
    total = len(items)
    pages = max((total + per_page - 1) // per_page, 1)
    counted = total <= world.get("count_limit", 10000)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    has_next = start + per_page < total
    headers = [("x-page", str(page)), ("x-per-page", str(per_page)),
               ("x-next-page", str(page + 1) if has_next else ""),
               ("x-prev-page", str(page - 1) if page > 1 else "")]
    if counted:
        headers += [("x-total", str(total)), ("x-total-pages", str(pages))]
    links = []
    if page > 1:
        links.append('<%s>; rel="prev"' % _page_url(req, page - 1))
    if has_next:
        links.append('<%s>; rel="next"' % _page_url(req, page + 1))
    links.append('<%s>; rel="first"' % _page_url(req, 1))
    if counted:
        links.append('<%s>; rel="last"' % _page_url(req, pages))
    headers.append(("Link", ", ".join(links)))
    return chunk, headers


def _bad_request(message):
    return json_response(400, {"error": message})


def _time_arg(req, name):
    value = req.arg(name)
    if value is None or value == "":
        return None
    return parse_time(value)


def _filter_times(items, req, key, after_arg, before_arg, inclusive):
    after = _time_arg(req, after_arg)
    before = _time_arg(req, before_arg)
    out = []
    for item in items:
        t = parse_time(item[key])
        if after is not None and (t < after if inclusive else t <= after):
            continue
        if before is not None and (t > before if inclusive else t >= before):
            continue
        out.append(item)
    return out


def _order(items, req, allowed, default_by, default_sort):
    by = req.arg("order_by", default_by)
    if by not in allowed:
        raise ValueError("order_by does not have a valid value")
    sort = req.arg("sort", default_sort)
    if sort not in ("asc", "desc"):
        raise ValueError("sort does not have a valid value")
    desc = sort == "desc"
    if by in ("id", "iid"):
        return sorted(items, key=lambda i: i[by], reverse=desc)
    if by.endswith("_at"):
        # GitLab breaks ties of a time order by id, newest id first
        keyed = sorted(items, key=lambda i: i.get("id", 0), reverse=True)
        return sorted(keyed, key=lambda i: parse_time(i.get(by)) or 0, reverse=desc)
    return sorted(items, key=lambda i: (str(i.get(by)), i.get("id", 0)), reverse=desc)


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------

def _web(project):
    return "https://gitlab.example.com/" + project["path"]


def _user(name):
    return {"id": int(hashlib.sha1(name.encode()).hexdigest()[:6], 16), "username": name,
            "name": name.title(), "state": "active",
            "avatar_url": "https://gitlab.example.com/uploads/-/system/user/avatar/1/avatar.png",
            "web_url": "https://gitlab.example.com/" + name}


def _pipeline_detail(project, p):
    obj = {"id": p["id"], "iid": p.get("iid", p["id"]), "project_id": project["id"],
           "name": p.get("name"), "sha": p.get("sha"), "ref": p.get("ref", "main"),
           "status": p.get("status"), "source": p.get("source", "push"),
           "before_sha": p.get("before_sha", "0" * 40), "tag": p.get("tag", False),
           "yaml_errors": None, "user": _user(p.get("user", "dev")),
           "created_at": p.get("created_at"), "updated_at": p.get("updated_at"),
           "started_at": p.get("started_at"), "finished_at": p.get("finished_at"),
           "committed_at": None, "duration": p.get("duration"),
           "queued_duration": p.get("queued_duration"), "coverage": None,
           "web_url": "%s/-/pipelines/%d" % (_web(project), p["id"])}
    status = obj["status"] or "unknown"
    obj["detailed_status"] = {"icon": "status_" + status, "text": status, "label": status,
                              "group": status, "has_details": True,
                              "details_path": "/%s/-/pipelines/%d" % (project["path"], p["id"])}
    return obj


def _pipeline_slim(project, p):
    detail = _pipeline_detail(project, p)
    return {k: detail[k] for k in PIPELINE_LIST_FIELDS}


def _deployment(project, d):
    job = d.get("job") or {}
    pipeline = next((p for p in project["pipelines"] if p["id"] == d.get("pipeline_id")), None)
    env = d.get("environment", "production")
    obj = {"id": d["id"], "iid": d.get("iid", d["id"]), "ref": d.get("ref", "main"), "sha": d.get("sha"),
           "status": d.get("status"), "created_at": d.get("created_at"), "updated_at": d.get("updated_at"),
           "user": _user(d.get("user", "deployer")),
           "environment": {"id": d.get("environment_id", 1000 + sum(map(ord, env))), "name": env,
                           "external_url": "https://%s.example.com" % env},
           "deployable": None}
    if job:
        obj["deployable"] = {
            "id": job.get("id"), "status": job.get("status"), "stage": "deploy", "name": "deploy",
            "ref": obj["ref"], "tag": False, "coverage": None,
            "created_at": job.get("created_at"), "started_at": job.get("started_at"),
            "finished_at": job.get("finished_at"), "duration": job.get("duration"),
            "user": _user(d.get("user", "deployer")),
            "commit": {"id": d.get("sha"), "short_id": (d.get("sha") or "")[:8]},
            "pipeline": ({"id": pipeline["id"], "iid": pipeline.get("iid", pipeline["id"]),
                          "project_id": project["id"], "sha": pipeline.get("sha"),
                          "ref": pipeline.get("ref"), "status": pipeline.get("status"),
                          "source": pipeline.get("source", "push"),
                          "created_at": pipeline.get("created_at"), "updated_at": pipeline.get("updated_at"),
                          "web_url": "%s/-/pipelines/%d" % (_web(project), pipeline["id"])}
                         if pipeline else None),
            "web_url": "%s/-/jobs/%s" % (_web(project), job.get("id")), "runner": None}
    return obj


def _commit(project, c):
    return {"id": c["id"], "short_id": c["id"][:8], "created_at": c.get("committed_date"),
            "parent_ids": c.get("parent_ids", []), "title": c.get("title"),
            "message": c.get("message", c.get("title")), "author_name": c.get("author_name"),
            "author_email": c.get("author_email"), "authored_date": c.get("authored_date"),
            "committer_name": c.get("committer_name", c.get("author_name")),
            "committer_email": c.get("committer_email", c.get("author_email")),
            "committed_date": c.get("committed_date"), "trailers": {}, "extended_trailers": {},
            "web_url": "%s/-/commit/%s" % (_web(project), c["id"])}


def _merge_request(project, m):
    obj = {k: m.get(k) for k in ("id", "iid", "title", "description", "state", "created_at", "updated_at",
                                 "merged_at", "closed_at", "merge_commit_sha", "squash_commit_sha",
                                 "sha", "source_branch", "target_branch")}
    obj["id"] = obj["id"] or 900000 + m["iid"]
    obj["project_id"] = project["id"]
    obj["author"] = _user(m.get("author", "dev"))
    obj["merged_by"] = _user(m.get("merged_by", "maintainer")) if m.get("merged_at") else None
    obj["merge_user"] = obj["merged_by"]
    obj["draft"] = False
    obj["squash"] = m.get("squash_commit_sha") is not None
    obj["labels"] = m.get("labels", [])
    obj["references"] = {"short": "!%d" % m["iid"], "full": "%s!%d" % (project["path"], m["iid"])}
    obj["web_url"] = "%s/-/merge_requests/%d" % (_web(project), m["iid"])
    return obj


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def _find_project(world, ident):
    for project in world["projects"].values():
        if ident == project["path"] or ident == str(project["id"]):
            return project
    raise NotFound()


def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    # an encoded slash of a project path stays inside its segment
    raw = [p for p in req.path.split("/") if p]
    parts = [urllib.parse.unquote(p) for p in raw]
    if len(parts) < 2 or parts[0] != "projects":
        raise NotFound()
    project = _find_project(world, parts[1])
    rest = parts[2:]
    try:
        return _project_route(world, req, project, rest)
    except ValueError as e:
        return _bad_request(str(e))


def _project_route(world, req, project, rest):
    if not rest:
        return json_response(200, {"id": project["id"], "path_with_namespace": project["path"],
                                   "name": project["path"].rsplit("/", 1)[-1],
                                   "default_branch": "main", "web_url": _web(project)})
    if rest == ["pipelines"]:
        items = _filter_times(project["pipelines"], req, "updated_at", "updated_after", "updated_before", False)
        items = _filter_times(items, req, "created_at", "created_after", "created_before", False)
        for f in ("status", "ref", "sha", "source", "name"):
            if req.arg(f):
                items = [p for p in items if p.get(f) == req.arg(f)]
        items = _order(items, req, ("id", "status", "ref", "updated_at", "user_id"), "id", "desc")
        chunk, headers = paginate(world, req, items)
        return json_response(200, [_pipeline_slim(project, p) for p in chunk], headers)
    if len(rest) == 2 and rest[0] == "pipelines":
        p = next((p for p in project["pipelines"] if str(p["id"]) == rest[1]), None)
        if p is None:
            return json_response(404, {"message": "404 Not found"})
        return json_response(200, _pipeline_detail(project, p))
    if rest == ["deployments"]:
        items = _filter_times(project["deployments"], req, "updated_at", "updated_after", "updated_before", False)
        if req.arg("environment"):
            items = [d for d in items if d.get("environment", "production") == req.arg("environment")]
        if req.arg("status"):
            items = [d for d in items if d.get("status") == req.arg("status")]
        order_by = req.arg("order_by", "id")
        if (req.arg("updated_after") or req.arg("updated_before")) and order_by != "updated_at":
            # GitLab enforces the pairing of the updated_at filter and order
            order_by = "updated_at"
        req.query["order_by"] = [order_by]
        items = _order(items, req, ("id", "iid", "created_at", "updated_at", "ref", "finished_at"), "id", "asc")
        chunk, headers = paginate(world, req, items)
        return json_response(200, [_deployment(project, d) for d in chunk], headers)
    if rest == ["merge_requests"]:
        items = project["merge_requests"]
        state = req.arg("state", "all")
        if state not in ("opened", "closed", "locked", "merged", "all"):
            raise ValueError("state does not have a valid value")
        if state != "all":
            items = [m for m in items if m.get("state") == state]
        items = _filter_times(items, req, "updated_at", "updated_after", "updated_before", True)
        items = _filter_times(items, req, "created_at", "created_after", "created_before", True)
        if req.arg("target_branch"):
            items = [m for m in items if m.get("target_branch") == req.arg("target_branch")]
        items = [dict(m, id=m.get("id") or 900000 + m["iid"]) for m in items]
        items = _order(items, req, ("created_at", "updated_at", "merged_at", "title"), "created_at", "desc")
        chunk, headers = paginate(world, req, items)
        return json_response(200, [_merge_request(project, m) for m in chunk], headers)
    if len(rest) == 3 and rest[0] == "merge_requests" and rest[2] == "commits":
        m = next((m for m in project["merge_requests"] if str(m["iid"]) == rest[1]), None)
        if m is None:
            return json_response(404, {"message": "404 Not found"})
        by_id = {c["id"]: c for c in project["commits"]}
        commits = [by_id[s] for s in reversed(m.get("commits", [])) if s in by_id]
        chunk, headers = paginate(world, req, commits)
        return json_response(200, [_commit(project, c) for c in chunk], headers)
    if rest == ["repository", "compare"]:
        ids = [c["id"] for c in project["commits"]]
        base, head = req.arg("from"), req.arg("to")
        if base is None or head is None:
            raise ValueError("from is missing, to is missing")
        if base not in ids or head not in ids:
            return json_response(404, {"message": "404 Ref Not Found"})
        ib, ih = ids.index(base), ids.index(head)
        ahead = project["commits"][ib + 1:ih + 1] if ih > ib else []
        return json_response(200, {
            "commit": _commit(project, ahead[-1]) if ahead else None,
            "commits": [_commit(project, c) for c in ahead], "diffs": [],
            "compare_timeout": False, "compare_same_ref": base == head,
            "web_url": "%s/-/compare/%s...%s" % (_web(project), base[:8], head[:8])})
    raise NotFound()


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

KEYS = {"pipelines": "id", "deployments": "id", "merge_requests": "iid", "commits": "id"}


def mutate(world, op):
    """Ops: upsert {project, collection, items} (fields merged into existing items by key);
    delete {project, collection, keys}; set {key: value} on the world (e.g. count_limit)."""
    kind = op["op"]
    if kind == "set":
        for k, v in op.items():
            if k != "op":
                world[k] = v
        return {"ok": True}
    project = world["projects"].setdefault(op["project"], _project({"id": len(world["projects"]) + 1},
                                                                   op["project"]))
    key = KEYS[op["collection"]]
    items = project[op["collection"]]
    if kind == "upsert":
        index = {item[key]: i for i, item in enumerate(items)}
        for new in op["items"]:
            if new[key] in index:
                items[index[new[key]]].update(new)
            else:
                index[new[key]] = len(items)
                items.append(new)
    elif kind == "delete":
        gone = set(op["keys"])
        project[op["collection"]] = [i for i in items if i[key] not in gone]
    else:
        raise ValueError("unknown gitlab op %r" % kind)
    world["_version"] = next(_versions)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests and benchmarks
# ---------------------------------------------------------------------------

def _stamp(t, i, every, ms=True):
    """GitLab writes UTC with milliseconds; every n-th time is written with +02:00."""
    if every and i % every == 3:
        return iso(t, 120)
    text = iso(t)
    return text[:-1] + ".%03dZ" % (int(t * 1000) % 1000) if ms else text


def generate(params):
    """Parameters: project, id, seed, start (ISO), span_days, pipelines, deployments,
    merge_requests, commits, running (latest pipelines still running), deploys_running
    (latest deployments not finished), offset_every, count_limit, token."""
    rng = random.Random(int(params.get("seed", 1)))
    path = params.get("project", "acme/shop")
    start = parse_time(params.get("start", "2024-01-01T00:00:00Z"))
    span = float(params.get("span_days", 90)) * 86400
    n_pipes = int(params.get("pipelines", 0))
    n_deps = int(params.get("deployments", 0))
    n_mrs = int(params.get("merge_requests", 0))
    n_commits = int(params.get("commits", max(20, 3 * n_deps + 3 * n_mrs)))
    running = int(params.get("running", 0))
    deps_running = int(params.get("deploys_running", 0))
    every = int(params.get("offset_every", 0))

    commits, commit_times = [], []
    for i in range(n_commits):
        t = start + span * i / max(n_commits, 1) + rng.uniform(0, span / max(n_commits, 1) / 2)
        sha = hashlib.sha1(("gl:%s:%d:%d" % (path, int(params.get("seed", 1)), i)).encode()).hexdigest()
        commits.append({"id": sha, "title": "Change %d" % i, "message": "Change %d\n\nDetails" % i,
                        "author_name": "Dev %d" % (i % 5), "author_email": "dev%d@example.com" % (i % 5),
                        "authored_date": iso(t - 600, 120 if i % 2 else 0),
                        "committed_date": iso(t, 120 if i % 2 else 0)})
        commit_times.append(t)

    def sha_at(t):
        i = bisect.bisect_right(commit_times, t) - 1
        return commits[max(i, 0)]["id"] if commits else "0" * 40

    pipelines = []
    for i in range(n_pipes):
        t = start + span * i / max(n_pipes, 1) + rng.uniform(0, span / max(n_pipes, 1) / 2)
        queued = rng.randint(1, 30)
        began = t + queued
        took = rng.randint(60, 900)
        c = rng.random()
        status = "success" if c < 0.8 else "failed" if c < 0.92 else "canceled" if c < 0.97 else "skipped"
        p = {"id": 7000001 + i, "iid": i + 1, "status": status,
             "source": "push" if rng.random() < 0.8 else "merge_request_event",
             "ref": "main" if rng.random() < 0.7 else "feature/f-%d" % (i % 30), "sha": sha_at(t),
             "name": None if i % 4 else "Build pipeline",
             "created_at": _stamp(t, i, every), "started_at": _stamp(began, i, every),
             "finished_at": _stamp(began + took, i, every), "updated_at": _stamp(began + took + 1, i, every),
             "duration": took, "queued_duration": queued}
        if status == "skipped":
            p.update({"started_at": None, "finished_at": None, "duration": None, "queued_duration": None,
                      "updated_at": p["created_at"]})
        if i >= n_pipes - running:
            p.update({"status": "running", "finished_at": None, "duration": None,
                      "updated_at": p["started_at"]})
        pipelines.append(p)

    deployments = []
    for i in range(n_deps):
        t = start + span * (i + 0.5) / max(n_deps, 1)
        env = "production" if i % 5 != 2 else "staging"
        finished = t + rng.randint(60, 600)
        status = "failed" if rng.random() < 0.1 else "success"
        d = {"id": 300001 + i, "iid": i + 1, "ref": "main", "sha": sha_at(t), "environment": env,
             "status": status, "created_at": _stamp(t, i, every), "updated_at": _stamp(finished + 1, i, every),
             "job": {"id": 800001 + i, "status": status, "created_at": _stamp(t - 5, i, every),
                     "started_at": _stamp(t, i, every), "finished_at": _stamp(finished, i, every)}}
        if i >= n_deps - deps_running:
            d.update({"status": "running", "updated_at": _stamp(t, i, every)})
            d["job"].update({"status": "running", "finished_at": None})
        deployments.append(d)

    mrs = []
    ci = 0
    for i in range(n_mrs):
        k = 1 + (i % 3)
        chunk = commits[ci:ci + k]
        ci = (ci + k) % max(n_commits - 3, 1)
        if not chunk:
            break
        first = parse_time(chunk[0]["authored_date"])
        merged = parse_time(chunk[-1]["committed_date"]) + rng.randint(600, 7200)
        mrs.append({"iid": i + 1, "title": "Merge request %d" % (i + 1), "state": "merged",
                    "author": "dev%d" % (i % 5), "created_at": _stamp(first + 60, i, every),
                    "updated_at": _stamp(merged + rng.randint(0, 60), i, every),
                    "merged_at": _stamp(merged, i, every), "closed_at": None,
                    "merge_commit_sha": chunk[-1]["id"] if i % 3 else None,
                    "squash_commit_sha": chunk[-1]["id"] if i % 3 == 0 else None,
                    "sha": chunk[-1]["id"], "source_branch": "feature/mr-%d" % (i + 1),
                    "target_branch": "main", "commits": [c["id"] for c in chunk]})

    return load_world({"token": params.get("token"), "count_limit": int(params.get("count_limit", 10000)),
                       "projects": {path: {"id": int(params.get("id", 42)), "pipelines": pipelines,
                                           "deployments": deployments, "merge_requests": mrs,
                                           "commits": commits}}})
