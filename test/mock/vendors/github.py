"""GitHub REST API (the parts the connector reads), served under /github.

World:
    {"token": "secret" or null,
     "repos": {"owner/name": {
         "id": 1, "default_branch": "main",
         "runs": [run, ...],            # run: GitHub fields + "attempts": [earlier attempts]
         "deployments": [dep, ...],     # dep: GitHub fields + "statuses": [status, ...]
         "pulls": [pull, ...],          # pull: number, title, state, user, created_at, updated_at,
                                        #   closed_at, merged_at, merge_commit_sha, base_ref,
                                        #   head_ref, head_sha, commits: [sha, ...]
         "commits": [commit, ...]}}}    # linear history, oldest first: sha, message,
                                        #   author {name, email, login, date}, committer_date

Fidelity: Link pagination (per_page max 100, no Link on a single page),
`created` filters (>=, >, <=, <, a..b, with * open ends, dates or times),
the 1,000-result cap of filtered run lists with the true total_count,
x-ratelimit-* headers on every response, 401 for a wrong token, run
attempts, deployments with statuses (newest first), closed pulls sorted by
updated, compare with commits, and timestamps both in Z and +02:00 (the
generator writes every 7th time with an offset).
"""

import bisect
import hashlib
import itertools
import json
import random
import time

from vendors.common import NotFound, Response, iso, json_response, link_header, page_args, paginate, parse_time

PREFIX = "github"

_versions = itertools.count(1)
_cache = {}
_started = int(time.time())

RUN_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")


def empty_world():
    return {"token": None, "repos": {}, "_version": next(_versions)}


def load_world(data):
    world = {"token": data.get("token"), "repos": {}, "_version": next(_versions)}
    for name, repo in (data.get("repos") or {}).items():
        world["repos"][name] = {
            "id": repo.get("id", 1),
            "default_branch": repo.get("default_branch", "main"),
            "runs": list(repo.get("runs", [])),
            "deployments": list(repo.get("deployments", [])),
            "pulls": list(repo.get("pulls", [])),
            "commits": list(repo.get("commits", [])),
        }
    return world


# ---------------------------------------------------------------------------
# Authentication and common headers
# ---------------------------------------------------------------------------

def check_auth(world, req):
    token = world.get("token")
    if not token:
        return True
    auth = req.headers.get("authorization", "")
    return auth in ("Bearer " + token, "token " + token)


def unauthorized(world, req):
    return json_response(401, {"message": "Bad credentials",
                               "documentation_url": "https://docs.github.com/rest"})


def common_headers(world, req):
    rate = world.setdefault("rate", {"limit": 5000, "used": 0})
    rate["used"] = min(rate["used"] + 1, rate["limit"] - 1)
    return [("x-ratelimit-limit", str(rate["limit"])),
            ("x-ratelimit-remaining", str(rate["limit"] - rate["used"])),
            ("x-ratelimit-used", str(rate["used"])),
            ("x-ratelimit-reset", str(_started + 3600)),
            ("x-ratelimit-resource", "core"),
            ("x-github-api-version-selected", "2022-11-28")]


# ---------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------

def _repo_object(world, name, repo):
    owner, _, short = name.partition("/")
    api = "https://api.github.com/repos/" + name
    obj = {"id": repo["id"], "node_id": "R_%d" % repo["id"], "name": short, "full_name": name,
           "private": False, "fork": False, "default_branch": repo["default_branch"],
           "owner": {"login": owner, "id": 7, "node_id": "O_7", "type": "Organization",
                     "site_admin": False, "url": "https://api.github.com/users/" + owner,
                     "html_url": "https://github.com/" + owner,
                     "avatar_url": "https://avatars.githubusercontent.com/u/7?v=4"},
           "html_url": "https://github.com/" + name, "description": "Mock repository", "url": api}
    for rel in ("forks", "keys", "collaborators", "teams", "hooks", "issue_events", "events",
                "assignees", "branches", "tags", "blobs", "git_tags", "git_refs", "trees",
                "statuses", "languages", "stargazers", "contributors", "subscribers",
                "subscription", "commits", "git_commits", "comments", "issue_comment",
                "contents", "compare", "merges", "archive", "downloads", "issues", "pulls",
                "milestones", "notifications", "labels", "releases", "deployments"):
        obj[rel + "_url"] = api + "/" + rel
    return obj


def _repo_json(world, name, repo):
    key = ("repo", name, world["_version"])
    if key not in _cache:
        _cache[key] = json.dumps(_repo_object(world, name, repo), separators=(",", ":"))
    return _cache[key]


def _run_json(world, name, repo, run, attempt=None):
    api = "https://api.github.com/repos/%s/actions/runs/%d" % (name, run["id"])
    obj = {k: v for k, v in run.items() if k != "attempts"}
    if attempt is not None:
        obj.update(attempt)
    obj.setdefault("node_id", "WFR_%d" % run["id"])
    obj.setdefault("check_suite_id", run["id"] * 3)
    obj.setdefault("pull_requests", [])
    obj.setdefault("display_title", obj.get("name"))
    obj.update({"url": api, "html_url": "https://github.com/%s/actions/runs/%d" % (name, run["id"]),
                "jobs_url": api + "/jobs", "logs_url": api + "/logs", "artifacts_url": api + "/artifacts",
                "cancel_url": api + "/cancel", "rerun_url": api + "/rerun",
                "previous_attempt_url": (api + "/attempts/%d" % (obj.get("run_attempt", 1) - 1)
                                         if obj.get("run_attempt", 1) > 1 else None),
                "workflow_url": "https://api.github.com/repos/%s/actions/workflows/%s" % (name, obj.get("workflow_id")),
                "actor": {"login": obj.get("actor_login", "octocat"), "id": 1, "type": "User"},
                "head_commit": {"id": obj.get("head_sha"), "tree_id": obj.get("head_sha"),
                                "message": "commit %s" % (obj.get("head_sha") or "")[:7],
                                "timestamp": obj.get("created_at"),
                                "author": {"name": "Dev", "email": "dev@example.com"},
                                "committer": {"name": "Dev", "email": "dev@example.com"}}})
    obj.pop("actor_login", None)
    repo_json = _repo_json(world, name, repo)
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text[:-1] + ',"repository":' + repo_json + ',"head_repository":' + repo_json + "}"


def _deployment_json(name, dep):
    obj = {k: v for k, v in dep.items() if k != "statuses"}
    api = "https://api.github.com/repos/%s/deployments/%d" % (name, dep["id"])
    obj.setdefault("node_id", "DE_%d" % dep["id"])
    obj.setdefault("task", "deploy")
    obj.setdefault("payload", {})
    obj.setdefault("original_environment", obj.get("environment"))
    obj.setdefault("description", None)
    obj.setdefault("transient_environment", False)
    obj.setdefault("production_environment", obj.get("environment") == "production")
    obj.setdefault("creator", {"login": "deployer", "id": 2, "type": "User"})
    obj.update({"url": api, "statuses_url": api + "/statuses",
                "repository_url": "https://api.github.com/repos/" + name})
    return obj


def _status_json(name, dep, status):
    obj = dict(status)
    obj.setdefault("environment", dep.get("environment"))
    obj.setdefault("description", "")
    obj.setdefault("updated_at", obj.get("created_at"))
    obj.setdefault("log_url", "https://ci.example.com/deploys/%d" % dep["id"])
    obj["deployment_url"] = "https://api.github.com/repos/%s/deployments/%d" % (name, dep["id"])
    obj["repository_url"] = "https://api.github.com/repos/" + name
    return obj


def _commit_json(name, commit, parent=None):
    author = commit.get("author", {})
    return {"sha": commit["sha"], "node_id": "C_" + commit["sha"][:10],
            "commit": {"author": {"name": author.get("name"), "email": author.get("email"),
                                  "date": author.get("date")},
                       "committer": {"name": author.get("name"), "email": author.get("email"),
                                     "date": commit.get("committer_date", author.get("date"))},
                       "message": commit.get("message", ""), "comment_count": 0,
                       "tree": {"sha": commit["sha"]}},
            "author": {"login": author.get("login"), "id": 3, "type": "User"} if author.get("login") else None,
            "committer": {"login": "web-flow", "id": 4, "type": "User"},
            "parents": [{"sha": parent}] if parent else [],
            "url": "https://api.github.com/repos/%s/commits/%s" % (name, commit["sha"]),
            "html_url": "https://github.com/%s/commit/%s" % (name, commit["sha"])}


def _pull_json(name, pull):
    owner = name.split("/")[0]
    return {"id": pull.get("id", 700000 + pull["number"]), "node_id": "PR_%d" % pull["number"],
            "number": pull["number"], "state": pull.get("state", "closed"), "locked": False,
            "title": pull.get("title"), "user": {"login": pull.get("user", "dev"), "id": 5, "type": "User"},
            "body": pull.get("body"), "created_at": pull.get("created_at"),
            "updated_at": pull.get("updated_at"), "closed_at": pull.get("closed_at"),
            "merged_at": pull.get("merged_at"), "merge_commit_sha": pull.get("merge_commit_sha"),
            "draft": False, "labels": [],
            "head": {"label": owner + ":" + pull.get("head_ref", "feature"), "ref": pull.get("head_ref", "feature"),
                     "sha": pull.get("head_sha")},
            "base": {"label": owner + ":" + pull.get("base_ref", "main"), "ref": pull.get("base_ref", "main")},
            "url": "https://api.github.com/repos/%s/pulls/%d" % (name, pull["number"]),
            "html_url": "https://github.com/%s/pull/%d" % (name, pull["number"])}


# ---------------------------------------------------------------------------
# Runs index: sorted by created time so that windows are found by bisection
# ---------------------------------------------------------------------------

def _runs_index(world, name, repo):
    key = ("runs", name, world["_version"])
    if key not in _cache:
        for k in [k for k in _cache if k[0] == "runs" and k[1] == name]:
            del _cache[k]
        runs = sorted(repo["runs"], key=lambda r: (parse_time(r["created_at"]), r["id"]))
        _cache[key] = (runs, [parse_time(r["created_at"]) for r in runs])
    return _cache[key]


def _bound(text, upper):
    """A bound of a created filter: a time, or a date meaning its whole day."""
    text = text.strip()
    if text == "*":
        return None
    if len(text) == 10:
        day = parse_time(text + "T00:00:00Z")
        return day + 86400 - 1e-6 if upper else day
    return parse_time(text)


def _created_range(expr):
    """(low, high) inclusive epoch bounds of GitHub's date query syntax."""
    expr = expr.strip()
    for op in (">=", "<=", ">", "<"):
        if expr.startswith(op):
            value = expr[len(op):]
            if op == ">=":
                return _bound(value, False), None
            if op == ">":
                return _bound(value, True) + 1e-6, None
            if op == "<=":
                return None, _bound(value, True)
            return None, _bound(value, False) - 1e-6
    if ".." in expr:
        low, _, high = expr.partition("..")
        return _bound(low, False), _bound(high, True)
    return _bound(expr, False), _bound(expr, True)


def _list_runs(world, name, repo, req):
    runs, created = _runs_index(world, name, repo)
    lo_i, hi_i = 0, len(runs)
    if req.arg("created"):
        try:
            low, high = _created_range(req.arg("created"))
        except (ValueError, TypeError):
            return json_response(422, {"message": "Validation Failed: created"})
        if low is not None:
            lo_i = bisect.bisect_left(created, low)
        if high is not None:
            hi_i = bisect.bisect_right(created, high)
    selected = runs[lo_i:hi_i]
    for f in ("branch", "event", "status", "head_sha"):
        if req.arg(f):
            key = "head_branch" if f == "branch" else f
            value = req.arg(f)
            if f == "status" and value not in ("queued", "in_progress", "completed", "waiting", "requested", "pending"):
                selected = [r for r in selected if r.get("conclusion") == value]
            else:
                selected = [r for r in selected if r.get(key) == value]
    total = len(selected)
    filtered = any(req.arg(f) is not None for f in RUN_FILTERS)
    reachable = min(total, 1000) if filtered else total
    page, per_page = page_args(req)
    last_page = max((reachable + per_page - 1) // per_page, 1)
    # newest first: index from the end of the ascending slice
    start = (page - 1) * per_page
    stop = min(start + per_page, reachable)
    items = [selected[total - 1 - i] for i in range(start, stop)] if start < reachable else []
    body = '{"total_count":%d,"workflow_runs":[%s]}' % (
        total, ",".join(_run_json(world, name, repo, r) for r in items))
    link = link_header(req, page, last_page)
    return Response(200, body, [("Link", link)] if link else [])


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

def _list_jobs(world, name, repo, rest, req):
    """One job per attempt, running from the attempt's start to its end: "completed_at"
    when the world gives one, else updated_at (the generator's updated_at is the end)."""
    run = next((r for r in repo["runs"] if str(r["id"]) == rest[2]), None)
    if run is None:
        raise NotFound()
    attempt = run
    if len(rest) == 6:
        if rest[3] != "attempts" or not rest[4].isdigit():
            raise NotFound()
        n = int(rest[4])
        if n != run.get("run_attempt", 1):
            attempt = next((a for a in run.get("attempts", []) if a.get("run_attempt") == n), None)
            if attempt is None:
                raise NotFound()
            attempt = dict(run, **attempt)
    done = attempt.get("status") == "completed"
    job = {"id": run["id"] * 10 + attempt.get("run_attempt", 1), "run_id": run["id"],
           "run_attempt": attempt.get("run_attempt", 1), "name": "build",
           "status": attempt.get("status"), "conclusion": attempt.get("conclusion"),
           "created_at": attempt.get("created_at"),
           "started_at": attempt.get("run_started_at") or attempt.get("created_at"),
           "completed_at": (attempt.get("completed_at") or attempt.get("updated_at")) if done else None}
    items, link = paginate(req, [job])
    return json_response(200, {"total_count": 1, "jobs": items}, [("Link", link)] if link else [])


def handle(world, req):
    if req.method != "GET":
        raise NotFound()
    parts = [p for p in req.path.split("/") if p]
    if parts == ["rate_limit"]:
        return json_response(200, {"resources": {"core": {"limit": 5000, "remaining": 5000,
                                                          "reset": _started + 3600, "used": 0}}})
    if len(parts) < 3 or parts[0] != "repos":
        raise NotFound()
    name = parts[1] + "/" + parts[2]
    repo = world["repos"].get(name)
    if repo is None:
        raise NotFound()
    rest = parts[3:]

    if not rest:
        return Response(200, _repo_json(world, name, repo))
    if rest == ["actions", "runs"]:
        return _list_runs(world, name, repo, req)
    if len(rest) in (4, 6) and rest[:2] == ["actions", "runs"] and rest[-1] == "jobs":
        return _list_jobs(world, name, repo, rest, req)
    if len(rest) in (3, 5) and rest[:2] == ["actions", "runs"]:
        run = next((r for r in repo["runs"] if str(r["id"]) == rest[2]), None)
        if run is None:
            raise NotFound()
        if len(rest) == 3:
            return Response(200, _run_json(world, name, repo, run))
        if rest[3] != "attempts" or not rest[4].isdigit():
            raise NotFound()
        n = int(rest[4])
        current = run.get("run_attempt", 1)
        if n == current:
            return Response(200, _run_json(world, name, repo, run))
        earlier = [a for a in run.get("attempts", []) if a.get("run_attempt") == n]
        if n < 1 or n > current or not earlier:
            raise NotFound()
        return Response(200, _run_json(world, name, repo, run, earlier[0]))
    if rest == ["deployments"]:
        deps = sorted(repo["deployments"], key=lambda d: (parse_time(d["created_at"]), d["id"]), reverse=True)
        for f in ("sha", "ref", "task", "environment"):
            if req.arg(f):
                deps = [d for d in deps if d.get(f) == req.arg(f)]
        items, link = paginate(req, deps)
        return json_response(200, [_deployment_json(name, d) for d in items], [("Link", link)] if link else [])
    if len(rest) == 3 and rest[0] == "deployments" and rest[2] == "statuses":
        dep = next((d for d in repo["deployments"] if str(d["id"]) == rest[1]), None)
        if dep is None:
            raise NotFound()
        statuses = sorted(dep.get("statuses", []), key=lambda s: (parse_time(s["created_at"]), s["id"]), reverse=True)
        items, link = paginate(req, statuses)
        return json_response(200, [_status_json(name, dep, s) for s in items], [("Link", link)] if link else [])
    if rest == ["pulls"]:
        state = req.arg("state", "open")
        pulls = [p for p in repo["pulls"] if state == "all" or p.get("state", "closed") == state]
        sort = req.arg("sort", "created")
        key = "updated_at" if sort == "updated" else "created_at"
        desc = req.arg("direction", "desc") == "desc"
        pulls.sort(key=lambda p: (parse_time(p[key]), p["number"]), reverse=desc)
        items, link = paginate(req, pulls)
        return json_response(200, [_pull_json(name, p) for p in items], [("Link", link)] if link else [])
    if len(rest) == 3 and rest[0] == "pulls" and rest[2] == "commits":
        pull = next((p for p in repo["pulls"] if str(p["number"]) == rest[1]), None)
        if pull is None:
            raise NotFound()
        by_sha = {c["sha"]: c for c in repo["commits"]}
        commits = [by_sha[s] for s in pull.get("commits", []) if s in by_sha]
        items, link = paginate(req, commits, maximum=100)
        return json_response(200, [_commit_json(name, c) for c in items], [("Link", link)] if link else [])
    if len(rest) == 2 and rest[0] == "compare" and "..." in rest[1]:
        base, _, head = rest[1].partition("...")
        shas = [c["sha"] for c in repo["commits"]]
        if base not in shas or head not in shas:
            raise NotFound()
        ib, ih = shas.index(base), shas.index(head)
        ahead = repo["commits"][ib + 1:ih + 1] if ih > ib else []
        status = "identical" if ib == ih else ("ahead" if ih > ib else "behind")
        if req.arg("page") is not None or req.arg("per_page") is not None:
            items, link = paginate(req, ahead)
        else:
            items, link = ahead[:250], None
        body = {"url": "https://api.github.com/repos/%s/compare/%s" % (name, rest[1]),
                "status": status, "ahead_by": max(ih - ib, 0), "behind_by": max(ib - ih, 0),
                "total_commits": len(ahead),
                "base_commit": _commit_json(name, repo["commits"][ib]),
                "merge_base_commit": _commit_json(name, repo["commits"][min(ib, ih)]),
                "commits": [_commit_json(name, c) for c in items], "files": []}
        return json_response(200, body, [("Link", link)] if link else [])
    raise NotFound()


# ---------------------------------------------------------------------------
# Changes made by tests
# ---------------------------------------------------------------------------

KEYS = {"runs": "id", "deployments": "id", "pulls": "number", "commits": "sha"}


def mutate(world, op):
    """Ops: upsert {repo, collection, items}; rerun {repo, id, ...fields of the new attempt};
    add_status {repo, deployment_id, status}."""
    repo = world["repos"].setdefault(op["repo"], {"id": 1, "default_branch": "main", "runs": [],
                                                  "deployments": [], "pulls": [], "commits": []})
    kind = op["op"]
    if kind == "upsert":
        key = KEYS[op["collection"]]
        items = repo[op["collection"]]
        index = {item[key]: i for i, item in enumerate(items)}
        for new in op["items"]:
            if new[key] in index:
                items[index[new[key]]].update(new)
            else:
                index[new[key]] = len(items)
                items.append(new)
    elif kind == "rerun":
        run = next(r for r in repo["runs"] if r["id"] == op["id"])
        previous = {k: run.get(k) for k in ("run_attempt", "status", "conclusion", "run_started_at", "updated_at")}
        run.setdefault("attempts", []).append(previous)
        run["run_attempt"] = run.get("run_attempt", 1) + 1
        run.update({k: v for k, v in op.items() if k not in ("op", "repo", "id")})
    elif kind == "add_status":
        dep = next(d for d in repo["deployments"] if d["id"] == op["deployment_id"])
        dep.setdefault("statuses", []).append(op["status"])
    else:
        raise ValueError("unknown github op %r" % kind)
    world["_version"] = next(_versions)
    return {"ok": True}


# ---------------------------------------------------------------------------
# Deterministic worlds for tests and benchmarks
# ---------------------------------------------------------------------------

WORKFLOWS = [("CI", ".github/workflows/ci.yml", 101, 0.70),
             ("Deploy", ".github/workflows/deploy.yml", 102, 0.20),
             ("CodeQL", ".github/workflows/codeql.yml", 103, 0.10)]


def _pick_workflow(r):
    for wf in WORKFLOWS:
        r -= wf[3]
        if r < 0:
            return wf
    return WORKFLOWS[0]


def _stamp(t, i, every):
    return iso(t, 120) if every and i % every == 3 else iso(t)


def generate(params):
    """Parameters: repo, seed, start (ISO), span_days, runs, deployments, pulls, commits,
    rerun_ratio, in_progress (latest runs still running), deploys_pending (latest deployments
    without a final status), offset_every (every n-th time written with +02:00), token."""
    rng = random.Random(int(params.get("seed", 1)))
    name = params.get("repo", "acme/shop")
    start = parse_time(params.get("start", "2024-01-01T00:00:00Z"))
    span = float(params.get("span_days", 90)) * 86400
    n_runs = int(params.get("runs", 0))
    n_deps = int(params.get("deployments", 0))
    n_pulls = int(params.get("pulls", 0))
    n_commits = int(params.get("commits", max(20, 3 * n_deps + 4 * n_pulls)))
    rerun_ratio = float(params.get("rerun_ratio", 0.05))
    in_progress = int(params.get("in_progress", 0))
    deploys_pending = int(params.get("deploys_pending", 0))
    every = int(params.get("offset_every", 7))

    commits = []
    commit_times = []
    for i in range(n_commits):
        t = start + span * i / max(n_commits, 1) + rng.uniform(0, span / max(n_commits, 1) / 2)
        sha = hashlib.sha1(("%s:%d:%d" % (name, int(params.get("seed", 1)), i)).encode()).hexdigest()
        commits.append({"sha": sha, "message": "Change %d\n\nDetails of change %d" % (i, i),
                        "author": {"name": "Dev %d" % (i % 5), "email": "dev%d@example.com" % (i % 5),
                                   "login": "dev%d" % (i % 5), "date": _stamp(t - 600, i, every)},
                        "committer_date": _stamp(t, i, every)})
        commit_times.append(t)

    def sha_at(t):
        i = bisect.bisect_right(commit_times, t) - 1
        return commits[max(i, 0)]["sha"] if commits else "0" * 40

    runs = []
    for i in range(n_runs):
        t = start + span * i / max(n_runs, 1) + rng.uniform(0, span / max(n_runs, 1) / 2)
        wf = _pick_workflow(rng.random())
        started = t + rng.randint(5, 60)
        updated = started + rng.randint(60, 900)
        c = rng.random()
        conclusion = "success" if c < 0.80 else "failure" if c < 0.92 else "cancelled" if c < 0.97 else "skipped"
        branch = "main" if rng.random() < 0.7 or wf[0] == "Deploy" else "feature/f-%d" % (i % 40)
        run = {"id": 1000001 + i, "name": wf[0], "path": wf[1], "workflow_id": wf[2],
               "head_branch": branch, "head_sha": sha_at(t), "run_number": i + 1,
               "event": "push" if branch == "main" else "pull_request",
               "status": "completed", "conclusion": conclusion, "run_attempt": 1,
               "created_at": _stamp(t, i, every), "run_started_at": _stamp(started, i, every),
               "updated_at": _stamp(updated, i, every)}
        if rng.random() < rerun_ratio and i < n_runs - in_progress:
            run["attempts"] = [{"run_attempt": 1, "status": "completed", "conclusion": "failure",
                                "run_started_at": run["run_started_at"], "updated_at": run["updated_at"]}]
            again = updated + rng.randint(30, 600)
            run.update({"run_attempt": 2, "conclusion": "success", "run_started_at": _stamp(again, i, every),
                        "updated_at": _stamp(again + rng.randint(60, 900), i, every)})
        if i >= n_runs - in_progress:
            run.update({"status": "in_progress", "conclusion": None, "updated_at": run["run_started_at"]})
        runs.append(run)

    deployments = []
    for i in range(n_deps):
        t = start + span * (i + 0.5) / max(n_deps, 1)
        env = "production" if i % 7 != 5 else "staging"
        dep = {"id": 500001 + i, "sha": sha_at(t), "ref": "main", "task": "deploy", "environment": env,
               "created_at": _stamp(t, i, every), "updated_at": _stamp(t + 300, i, every),
               "statuses": [{"id": 900001 + 10 * i, "state": "in_progress", "created_at": _stamp(t + 5, i, every)}]}
        if i < n_deps - deploys_pending:
            final = "failure" if rng.random() < 0.1 else "success"
            dep["statuses"].append({"id": 900002 + 10 * i, "state": final,
                                    "created_at": _stamp(t + rng.randint(60, 600), i, every)})
        deployments.append(dep)

    pulls = []
    ci = 0
    for i in range(n_pulls):
        k = 1 + (i % 4)
        chunk = commits[ci:ci + k]
        ci = (ci + k) % max(n_commits - 4, 1)
        if not chunk:
            break
        first = parse_time(chunk[0]["author"]["date"])
        last = parse_time(chunk[-1]["committer_date"])
        merged = i % 10 != 9
        closed = last + rng.randint(600, 7200)
        pulls.append({"number": i + 1, "title": "Pull request %d" % (i + 1), "state": "closed",
                      "user": "dev%d" % (i % 5), "created_at": _stamp(first + 60, i, every),
                      "updated_at": _stamp(closed + rng.randint(0, 60), i, every),
                      "closed_at": _stamp(closed, i, every),
                      "merged_at": _stamp(closed, i, every) if merged else None,
                      "merge_commit_sha": chunk[-1]["sha"] if merged else None,
                      "base_ref": "main", "head_ref": "feature/pr-%d" % (i + 1), "head_sha": chunk[-1]["sha"],
                      "commits": [c["sha"] for c in chunk]})

    return load_world({"token": params.get("token"),
                       "repos": {name: {"id": 4242, "default_branch": "main", "runs": runs,
                                        "deployments": deployments, "pulls": pulls, "commits": commits}}})
