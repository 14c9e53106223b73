"""Jenkins remote access API (JSON), served under /jenkins.

The prefix stands for the Jenkins root, https://ci.example.com/.

World:
    {"user": "ci-bot", "token": "secret" or null,
     "jobs": {"folder/sub/job": {"class": "hudson.model.FreeStyleProject",
                                 "builds": [build, ...]}, ...}}
    A path that is the parent of another path is a folder (its entry, if
    any, gives its class, e.g. a multibranch project).  A build:
        {"number": 31, "result": "SUCCESS" | "FAILURE" | "UNSTABLE" | "ABORTED" |
                                 "NOT_BUILT" | null,
         "building": false, "timestamp": epoch ms, "duration": ms,
         "estimatedDuration": ms, "sha": "...", "branch": "refs/remotes/origin/main",
         "remote_url": "...", "causes": [{"_class": ..., ...}],
         "parameters": [{"name": ..., "value": ...}], "queuing_ms": ms}

Fidelity (jenkins.io remote-access-api.adoc and the /api help page): job
paths nest as /job/a/job/b/; names are URL-encoded once per segment (a
multibranch branch "feature/x" is the job "feature%2Fx", requested as
feature%252Fx); the tree parameter selects properties (nested with [...],
"*" for all) and slices arrays with {M,N} (M inclusive, N exclusive),
{M,}, {,N} and {N}, with _class always kept; a malformed tree is a 400;
allBuilds holds every build and builds only the newest 100, both newest
first; timestamp and duration are epoch milliseconds, result is null while
a build runs (Pipeline builds may carry a result while still building);
the git revision sits in the hudson.plugins.git.util.BuildData action;
HTTP Basic with user and API token (401 for a wrong one, 403 for none when
the world has a token); X-Jenkins on every response; HTML error pages.
"""

import base64
import hashlib
import itertools
import random
import urllib.parse

from vendors.common import NotFound, Response, json_response, parse_time

PREFIX = "jenkins"

VERSION = "2.452.3"
FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
MULTIBRANCH = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
FREESTYLE = "hudson.model.FreeStyleProject"
PIPELINE = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
BUILD_CLASS = {FREESTYLE: "hudson.model.FreeStyleBuild", PIPELINE: "org.jenkinsci.plugins.workflow.job.WorkflowRun"}

_versions = itertools.count(1)
_cache = {}


def empty_world():
    return {"user": None, "token": None, "jobs": {}, "_version": next(_versions)}


def load_world(data):
    world = empty_world()
    world["user"] = data.get("user")
    world["token"] = data.get("token")
    for path, job in (data.get("jobs") or {}).items():
        world["jobs"][path.strip("/")] = {"class": job.get("class", FREESTYLE),
                                          "builds": list(job.get("builds", []))}
    return world


# ---------------------------------------------------------------------------
# Authentication and common headers
# ---------------------------------------------------------------------------

def _credentials(req):
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    try:
        user, _, token = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return ("", "")
    return (user, token)


def check_auth(world, req):
    if not world.get("token"):
        return True
    return _credentials(req) == (world.get("user") or "", world["token"])


def _html(status, title, text):
    body = ("<html><head><title>%s [Jenkins]</title></head><body><h2>HTTP ERROR %d %s</h2>"
            "<p>%s</p></body></html>" % (title, status, title, text))
    return Response(status, body, [], "text/html;charset=utf-8")


def unauthorized(world, req):
    creds = _credentials(req)
    if creds is None:
        return _html(403, "Forbidden", "Authentication required")
    return _html(401, "Unauthorized", "Invalid password/token for user: %s" % creds[0])


def common_headers(world, req):
    return [("X-Jenkins", VERSION), ("X-Jenkins-Session", "3f2a9c1d"), ("X-Content-Type-Options", "nosniff")]


# ---------------------------------------------------------------------------
# The tree parameter
# ---------------------------------------------------------------------------

class TreeError(ValueError):
    pass


def parse_tree(text):
    """'a,b[c,d]{0,10},e{3}' -> {name: (subtree or None, (lo, hi) or None)}"""
    pos = 0

    def spec():
        nonlocal pos
        out = {}
        while True:
            start = pos
            while pos < len(text) and text[pos] not in ",[]{}":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise TreeError("empty name at %d" % start)
            sub = rng = None
            if pos < len(text) and text[pos] == "[":
                pos += 1
                sub = spec()
                if pos >= len(text) or text[pos] != "]":
                    raise TreeError("missing ]")
                pos += 1
            if pos < len(text) and text[pos] == "{":
                end = text.find("}", pos)
                if end < 0:
                    raise TreeError("missing }")
                rng = parse_range(text[pos + 1:end])
                pos = end + 1
            out[name] = (sub, rng)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            return out

    result = spec()
    if pos != len(text):
        raise TreeError("unexpected %r at %d" % (text[pos], pos))
    return result


def parse_range(text):
    def num(s):
        s = s.strip()
        if not s.isdigit():
            raise TreeError("bad range {%s}" % text)
        return int(s)
    if "," not in text:
        n = num(text)
        return (n, n + 1)
    lo, _, hi = text.partition(",")
    return (num(lo) if lo.strip() else 0, num(hi) if hi.strip() else None)


def apply_tree(value, tree):
    """The part of a JSON value the tree asks for (tree None: only _class of objects)."""
    if isinstance(value, list):
        return [apply_tree(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if tree is None:
        return {"_class": value["_class"]} if "_class" in value else {}
    if "*" in tree:
        sub, _ = tree["*"]
        return {k: (v if sub is None and not isinstance(v, (dict, list)) else
                    apply_tree(v, sub) if sub is not None else v)
                for k, v in value.items()}
    out = {}
    if "_class" in value:
        out["_class"] = value["_class"]
    for name, (sub, rng) in tree.items():
        if name not in value:
            continue
        v = value[name]
        if isinstance(v, list) and rng is not None:
            lo, hi = rng
            v = v[lo:hi]
        out[name] = apply_tree(v, sub) if isinstance(v, (dict, list)) else v
    return out


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------

def _job_url(req, path):
    return req.base + "/" + "".join("job/%s/" % urllib.parse.quote(p, safe="") for p in path.split("/"))


def _children(world, path):
    prefix = path + "/" if path else ""
    names = set()
    for p in world["jobs"]:
        if p.startswith(prefix) and p != path:
            names.add(p[len(prefix):].split("/")[0])
    return sorted(names)


def _is_folder(world, path):
    return bool(_children(world, path)) or world["jobs"].get(path, {}).get("class") in (FOLDER, MULTIBRANCH)


def _build_json(req, world, path, b):
    job = world["jobs"][path]
    cls = BUILD_CLASS.get(job["class"], "hudson.model.FreeStyleBuild")
    actions = [{"_class": "hudson.model.CauseAction",
                "causes": b.get("causes") or [{"_class": "hudson.model.Cause$UserIdCause",
                                               "shortDescription": "Started by user ci", "userId": "ci"}]}]
    if b.get("parameters"):
        actions.append({"_class": "hudson.model.ParametersAction",
                        "parameters": [dict({"_class": "hudson.model.StringParameterValue"}, **p)
                                       for p in b["parameters"]]})
    if b.get("library_sha"):
        # a Pipeline shared library checks out first, with its own BuildData
        actions.append({"_class": "hudson.plugins.git.util.BuildData",
                        "lastBuiltRevision": {"SHA1": b["library_sha"],
                                              "branch": [{"SHA1": b["library_sha"], "name": "master"}]},
                        "remoteUrls": ["https://git.example.com/ci/shared-library.git"], "scmName": ""})
    if b.get("sha"):
        branch = b.get("branch", "refs/remotes/origin/main")
        actions.append({"_class": "hudson.plugins.git.util.BuildData",
                        "buildsByBranchName": {branch: {"buildNumber": b["number"]}},
                        "lastBuiltRevision": {"SHA1": b["sha"], "branch": [{"SHA1": b["sha"], "name": branch}]},
                        "remoteUrls": [b.get("remote_url", "https://git.example.com/acme/shop.git")],
                        "scmName": ""})
    actions.append({})
    if b.get("queuing_ms") is not None:
        actions.append({"_class": "jenkins.metrics.impl.TimeInQueueAction", "blockedDurationMillis": 0,
                        "buildableDurationMillis": b["queuing_ms"], "queuingDurationMillis": b["queuing_ms"],
                        "waitingDurationMillis": 0})
    display = " » ".join(path.split("/"))
    return {"_class": cls, "actions": actions, "artifacts": [], "building": b.get("building", False),
            "description": None, "displayName": "#%d" % b["number"],
            "duration": b.get("duration", 0), "estimatedDuration": b.get("estimatedDuration", 60000),
            "executor": None, "fullDisplayName": "%s #%d" % (display, b["number"]), "id": str(b["number"]),
            "keepLog": False, "number": b["number"], "queueId": b.get("queueId", 1000 + b["number"]),
            "result": b.get("result"), "timestamp": b["timestamp"],
            "url": "%s%d/" % (_job_url(req, path), b["number"]),
            "changeSets": [], "culprits": [], "inProgress": b.get("building", False)}


def _job_json(req, world, path):
    if not path:
        return {"_class": "hudson.model.Hudson", "mode": "NORMAL", "nodeDescription": "the built-in node",
                "nodeName": "", "numExecutors": 2, "useSecurity": True, "url": req.base + "/",
                "jobs": [_job_ref(req, world, c) for c in _children(world, "")]}
    name = path.split("/")[-1]
    base = {"name": name, "fullName": path, "displayName": urllib.parse.unquote(name),
            "fullDisplayName": " » ".join(urllib.parse.unquote(p) for p in path.split("/")),
            "url": _job_url(req, path), "description": None}
    if _is_folder(world, path):
        cls = world["jobs"].get(path, {}).get("class", FOLDER)
        if cls not in (FOLDER, MULTIBRANCH):
            cls = FOLDER
        return dict(base, _class=cls, healthReport=[], primaryView={"_class": "hudson.model.AllView"},
                    jobs=[_job_ref(req, world, path + "/" + c) for c in _children(world, path)])
    job = world["jobs"][path]
    builds = sorted(job["builds"], key=lambda b: b["number"], reverse=True)
    key = (world["_version"], path, req.base)
    if key not in _cache:
        # paging a long history renders it once per change of the world
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = [_build_json(req, world, path, b) for b in builds]
    full = _cache[key]
    last = full[0] if full else None
    return dict(base, _class=job["class"], buildable=True, color="blue", inQueue=False, keepDependencies=False,
                concurrentBuild=False, nextBuildNumber=(builds[0]["number"] + 1) if builds else 1,
                allBuilds=full, builds=full[:100], firstBuild=full[-1] if full else None,
                lastBuild=last, lastCompletedBuild=next((b for b in full if not b["building"]), None),
                healthReport=[], property=[], actions=[{}])


def _job_ref(req, world, path):
    cls = (world["jobs"].get(path, {}).get("class", FOLDER) if _is_folder(world, path)
           else world["jobs"][path]["class"])
    return {"_class": cls, "name": path.split("/")[-1], "url": _job_url(req, path),
            "color": None if _is_folder(world, path) else "blue"}


def _default_view(obj):
    """Without tree, nested objects show only _class, number and url (depth 0)."""
    out = {}
    for k, v in obj.items():
        if isinstance(v, list):
            out[k] = [{kk: vv for kk, vv in i.items() if kk in ("_class", "number", "url", "name", "color")}
                      if isinstance(i, dict) else i for i in v]
        elif isinstance(v, dict):
            out[k] = {kk: vv for kk, vv in v.items() if kk in ("_class", "number", "url")}
        else:
            out[k] = v
    out.pop("allBuilds", None)
    return out


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    parts = [urllib.parse.unquote(p) for p in req.path.split("/") if p]
    if parts[-2:] != ["api", "json"]:
        return _html(404, "Not Found", "Not Found")
    parts = parts[:-2]
    names = []
    while len(parts) >= 2 and parts[0] == "job":
        names.append(parts[1])
        parts = parts[2:]
    path = "/".join(names)
    if path and path not in world["jobs"] and not _is_folder(world, path):
        return _html(404, "Not Found", "Not Found")
    if not parts:
        obj = _job_json(req, world, path)
    elif len(parts) == 1 and (parts[0].isdigit() or parts[0] in ("lastBuild", "lastCompletedBuild")):
        if _is_folder(world, path) or not path:
            return _html(404, "Not Found", "Not Found")
        builds = world["jobs"][path]["builds"]
        if parts[0].isdigit():
            b = next((b for b in builds if b["number"] == int(parts[0])), None)
        else:
            done = [b for b in builds if parts[0] == "lastBuild" or not b.get("building")]
            b = max(done, key=lambda b: b["number"]) if done else None
        if b is None:
            return _html(404, "Not Found", "Not Found")
        obj = _build_json(req, world, path, b)
    else:
        return _html(404, "Not Found", "Not Found")
    tree = req.arg("tree")
    if tree is None:
        return json_response(200, _default_view(obj))
    try:
        spec = parse_tree(tree)
    except TreeError as e:
        return _html(400, "Bad Request", "Malformed tree expression: %s" % e)
    return json_response(200, apply_tree(obj, spec))


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

def mutate(world, op):
    """Ops: upsert_builds {job, builds: [...]} (fields merged by number), delete_build {job, number},
    add_job {job, class}, remove_job {job}."""
    kind = op["op"]
    path = op["job"].strip("/")
    if kind == "add_job":
        world["jobs"].setdefault(path, {"class": op.get("class", FREESTYLE), "builds": []})
    elif kind == "remove_job":
        world["jobs"] = {p: j for p, j in world["jobs"].items() if p != path and not p.startswith(path + "/")}
    elif kind == "upsert_builds":
        job = world["jobs"].setdefault(path, {"class": op.get("class", FREESTYLE), "builds": []})
        index = {b["number"]: b for b in job["builds"]}
        for new in op["builds"]:
            if new["number"] in index:
                index[new["number"]].update(new)
            else:
                job["builds"].append(dict(new))
    elif kind == "delete_build":
        job = world["jobs"][path]
        job["builds"] = [b for b in job["builds"] if b["number"] != op["number"]]
    else:
        raise ValueError("unknown jenkins op %r" % kind)
    world["_version"] = next(_versions)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests and benchmarks
# ---------------------------------------------------------------------------

CAUSES = [{"_class": "hudson.triggers.SCMTrigger$SCMTriggerCause", "shortDescription": "Started by an SCM change"},
          {"_class": "hudson.model.Cause$UserIdCause", "shortDescription": "Started by user Mona", "userId": "mona"},
          {"_class": "hudson.triggers.TimerTrigger$TimerTriggerCause", "shortDescription": "Started by timer"},
          {"_class": "jenkins.branch.BranchEventCause", "shortDescription": "Push event to branch main"}]


def _builds(rng, name, n, start, span, running, deploy=False):
    builds = []
    for i in range(n):
        t = start + span * i / max(n, 1) + rng.uniform(0, span / max(n, 1) / 2)
        c = rng.random()
        result = ("SUCCESS" if c < 0.75 else "FAILURE" if c < 0.87 else "UNSTABLE" if c < 0.93
                  else "ABORTED" if c < 0.98 else "NOT_BUILT")
        duration = rng.randint(20_000, 900_000) + rng.randint(0, 999)
        sha = hashlib.sha1(("jk:%s:%d" % (name, i)).encode()).hexdigest()
        b = {"number": i + 1, "result": result, "building": False,
             "timestamp": int(t * 1000) + rng.randint(0, 999), "duration": duration,
             "estimatedDuration": 300_000, "sha": sha, "branch": "refs/remotes/origin/main",
             "causes": [CAUSES[i % len(CAUSES)]], "queuing_ms": rng.randint(0, 5000)}
        if deploy:
            b["parameters"] = [{"name": "ENVIRONMENT", "value": "production" if i % 4 else "staging"}]
        if i >= n - running:
            b.update({"result": None, "building": True, "duration": 0})
        builds.append(b)
    return builds


def generate(params):
    """A folder "shop" with jobs "build" and "deploy-prod" (ENVIRONMENT parameter), and a
    multibranch project "web" with branches "main" and "feature/login".  Parameters: seed,
    start (ISO), span_days, builds (per job), deploys, running (newest builds of each job
    still running), token, user."""
    rng = random.Random(int(params.get("seed", 1)))
    start = parse_time(params.get("start", "2024-01-01T00:00:00Z"))
    span = float(params.get("span_days", 30)) * 86400
    n = int(params.get("builds", 0))
    deploys = int(params.get("deploys", max(n // 5, 0)))
    running = int(params.get("running", 0))
    jobs = {
        "shop": {"class": FOLDER},
        "shop/build": {"class": FREESTYLE, "builds": _builds(rng, "shop/build", n, start, span, running)},
        "shop/deploy-prod": {"class": PIPELINE,
                             "builds": _builds(rng, "shop/deploy-prod", deploys, start, span, running, True)},
        "web": {"class": MULTIBRANCH},
        "web/main": {"class": PIPELINE, "builds": _builds(rng, "web/main", n // 2, start, span, running)},
        "web/feature%2Flogin": {"class": PIPELINE,
                                "builds": _builds(rng, "web/feature%2Flogin", n // 4, start, span, 0)},
    }
    for b in jobs["web/feature%2Flogin"]["builds"]:
        b["branch"] = "feature/login"
    return load_world({"user": params.get("user", "ci-bot"), "token": params.get("token"), "jobs": jobs})
