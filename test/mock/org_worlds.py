"""The vendors' view of a generated organisation (org.py): the commits,
pull and merge requests, CI runs, deployments and incidents of each
service's timeline, written as the worlds of the mock's vendor modules
(GitHub, GitLab, Jenkins, PagerDuty, Opsgenie; see their docstrings for
the shapes).  Every function draws from its own seeded stream, so the
worlds are the same for the same seed and anchor."""

import bisect
import math

from org import DAY, HOUR, MINUTE, TITLES, _lognormal, _poisson, _rng, _sha, _uuid, iso, parse_anchor


# ---------------------------------------------------------------------------
# Commits, pull requests and CI runs of a service's main branch
# ---------------------------------------------------------------------------

def history(seed, svc):
    """One entry per merge: its commits (sha, authored, committed) and the
    pull request that brought them (None for a direct push)."""
    rng = _rng(seed, svc.name, "history")
    p = svc.p
    hotfix_heads = {d["head"] for d in svc.deployments if d["kind"] == "hotfix"}
    authors = ["%s-dev%d" % (p["team"].split("-")[0], k) for k in range(1, 7)]
    merges = []
    number = 0
    for m, t in enumerate(svc.merges):
        hotfix = t in hotfix_heads
        k = 1 if hotfix else 1 + _poisson(rng, 0.7)
        review = 10 * MINUTE if hotfix else max(_lognormal(rng, p["review"] * HOUR, 0.8), 5 * MINUTE)
        coding = 20 * MINUTE if hotfix else max(_lognormal(rng, p["coding"] * HOUR, 0.8), 10 * MINUTE)
        opened = t - review
        first = opened - coding
        authored = sorted([first] + [rng.uniform(first, t - MINUTE) for _ in range(k - 1)])
        author = rng.choice(authors)
        title = ("Hotfix: %s" % rng.choice(TITLES[svc.name]).lower()) if hotfix else \
            "%s: %s" % (svc.name.capitalize(), rng.choice(
                ["add retries", "refactor handlers", "bump dependencies", "improve logging", "fix edge case",
                 "new endpoint", "tune timeouts", "cache lookups", "clean up flags", "speed up queries"]))
        commits = [dict(sha=_sha(seed, svc.name, m, j), authored=round(a), committed=t + j,
                        title=title if j == k - 1 else "WIP %s (%d/%d)" % (title.lower(), j + 1, k),
                        author=author) for j, a in enumerate(authored)]
        pull = None
        if hotfix or rng.random() < 0.92:
            number += 1
            pull = dict(number=number, title=title, author=author, opened=round(opened),
                        merged=t + k - 1, branch="%s/%s-%d" % ("hotfix" if hotfix else "feature",
                                                               svc.name, number))
        merges.append(dict(time=t, commits=commits, pull=pull, hotfix=hotfix))
    return merges


def _run_outcome(rng, p):
    """'success', 'failure' (and whether a re-run passed), or 'cancelled'."""
    r = rng.random()
    if r < p["ci_fail"]:
        return "failure", rng.random() < p["flaky"]
    if r > 0.985:
        return "cancelled", False
    return "success", False


# ---------------------------------------------------------------------------
# Vendor worlds
# ---------------------------------------------------------------------------

def _gh_commit(c):
    return {"sha": c["sha"], "message": c["title"] + "\n",
            "author": {"name": c["author"].title(), "email": c["author"] + "@acme.example",
                       "login": c["author"], "date": iso(c["authored"])},
            "committer_date": iso(c["committed"])}


def github_repo(seed, svc, merges, ids):
    p = svc.p
    rng = _rng(seed, svc.name, "github")
    by_time = {m["time"]: m for m in merges}
    commits, pulls, runs, deployments = [], [], [], []

    def run(name, path, wf, branch, sha, event, created, outcome=None, duration=None):
        ids["run"] += 1
        queued = max(_lognormal(rng, 25, 0.7), 3)
        took = duration or max(_lognormal(rng, p["ci_minutes"] * MINUTE, 0.35), 30)
        conclusion, flaky = outcome or _run_outcome(rng, p)
        r = {"id": ids["run"], "name": name, "path": path, "workflow_id": wf, "head_branch": branch,
             "head_sha": sha, "run_number": ids["run"] % 100000, "event": event, "status": "completed",
             "conclusion": conclusion, "run_attempt": 1, "created_at": iso(created),
             "run_started_at": iso(created + queued), "updated_at": iso(created + queued + took)}
        if flaky:
            again = created + queued + took + rng.uniform(2, 30) * MINUTE
            r["attempts"] = [{"run_attempt": 1, "status": "completed", "conclusion": "failure",
                              "run_started_at": r["run_started_at"], "updated_at": r["updated_at"]}]
            r.update({"run_attempt": 2, "conclusion": "success", "run_started_at": iso(again),
                      "updated_at": iso(again + took)})
        if created + queued + took < svc.anchor:
            runs.append(r)
        return r

    for m in merges:
        for c in m["commits"]:
            commits.append(_gh_commit(c))
        head = m["commits"][-1]
        pr = m["pull"]
        if pr:
            for j in range(1 + _poisson(rng, 0.6)):
                at = rng.uniform(pr["opened"], m["time"] - MINUTE)
                sha = m["commits"][min(j, len(m["commits"]) - 1)]["sha"]
                run("CI", ".github/workflows/ci.yml", 101, pr["branch"], sha, "pull_request", at)
            pulls.append({"number": pr["number"], "title": pr["title"], "state": "closed", "user": pr["author"],
                          "created_at": iso(pr["opened"]), "updated_at": iso(pr["merged"] + 40),
                          "closed_at": iso(pr["merged"]), "merged_at": iso(pr["merged"]),
                          "merge_commit_sha": head["sha"], "base_ref": "main", "head_ref": pr["branch"],
                          "head_sha": head["sha"], "commits": [c["sha"] for c in m["commits"]]})
        run("CI", ".github/workflows/ci.yml", 101, "main", head["sha"], "push", m["time"] + 5)
    # pull requests closed without merging: no commits on main
    for k in range(len(pulls) // 12):
        base = pulls[rng.randrange(len(pulls))]
        opened = parse_anchor(base["created_at"]) - rng.uniform(1, 48) * HOUR
        closed = opened + rng.uniform(2, 72) * HOUR
        if closed < svc.anchor:
            pulls.append({"number": 0, "title": "Experiment %d" % (k + 1), "state": "closed", "user": base["user"],
                          "created_at": iso(opened), "updated_at": iso(closed), "closed_at": iso(closed),
                          "merged_at": None, "merge_commit_sha": None, "base_ref": "main",
                          "head_ref": "spike/%s-%d" % (svc.name, k + 1), "head_sha": None, "commits": []})
    # nightly code scanning
    day = math.floor(svc.start / DAY) * DAY + DAY
    while day + 3 * HOUR < svc.anchor:
        i = bisect.bisect_right(svc.merges, day) - 1
        if i >= 0:
            run("CodeQL", ".github/workflows/codeql.yml", 103, "main", by_time[svc.merges[i]]["commits"][-1]["sha"],
                "schedule", day + 2 * HOUR, outcome=("success", False))
        day += DAY
    # deployments: through the Deployments API, or runs of the Deploy workflow
    for d in svc.deployments:
        if svc.p["deploy"] == "jenkins" and d["env"] == "production":
            continue
        sha = by_time[d["head"]]["commits"][-1]["sha"]
        outcome = ("success" if d["status"] == "success" else "failure", False)
        deploy_run = run("Deploy", ".github/workflows/deploy.yml", 102, "main", sha, "push", d["cut"],
                         outcome=outcome, duration=d["finished"] - d["cut"] - 20)
        if p["deploy"] == "workflow" and d["env"] == "production":
            deploy_run.update({"created_at": iso(d["started"] - 20), "run_started_at": iso(d["started"]),
                               "updated_at": iso(d["finished"])})
            continue
        ids["deployment"] += 1
        ids["status"] += 2
        deployments.append({"id": ids["deployment"], "sha": sha, "ref": "main", "task": "deploy",
                            "environment": d["env"], "created_at": iso(d["started"]),
                            "updated_at": iso(d["finished"]),
                            "statuses": [{"id": ids["status"] - 1, "state": "in_progress",
                                          "created_at": iso(d["started"] + 10)},
                                         {"id": ids["status"], "state": d["status"],
                                          "created_at": iso(d["finished"])}]})
    for k, pull in enumerate(sorted(pulls, key=lambda x: x["created_at"])):
        pull["number"] = k + 1
    return {"id": ids["repo"], "default_branch": "main", "runs": runs, "deployments": deployments,
            "pulls": pulls, "commits": commits}


def gitlab_project(seed, svc, merges, ids):
    p = svc.p
    rng = _rng(seed, svc.name, "gitlab")
    by_time = {m["time"]: m for m in merges}
    commits, mrs, pipelines, deployments = [], [], [], []
    pipeline_of = {}

    def pipeline(ref, sha, source, created, outcome=None):
        ids["pipeline"] += 1
        queued = max(_lognormal(rng, 20, 0.8), 1)
        took = max(_lognormal(rng, p["ci_minutes"] * MINUTE, 0.35), 30)
        conclusion, _ = outcome or _run_outcome(rng, p)
        status = {"success": "success", "failure": "failed", "cancelled": "canceled"}[conclusion]
        pl = {"id": ids["pipeline"], "iid": ids["pipeline"] - ids["pipeline_base"], "status": status,
              "source": source, "ref": ref, "sha": sha, "name": None,
              "created_at": iso(created, True), "started_at": iso(created + queued, True),
              "finished_at": iso(created + queued + took, True),
              "updated_at": iso(created + queued + took + 1, True),
              "duration": round(took), "queued_duration": round(queued, 1), "user": "ci"}
        if created + queued + took < svc.anchor:
            pipelines.append(pl)
        return pl

    for m in merges:
        for c in m["commits"]:
            commits.append({"id": c["sha"], "title": c["title"], "message": c["title"] + "\n",
                            "author_name": c["author"].title(), "author_email": c["author"] + "@acme.example",
                            "authored_date": iso(c["authored"], True), "committed_date": iso(c["committed"], True)})
        head = m["commits"][-1]
        pr = m["pull"]
        if pr:
            if rng.random() < 0.6:
                pipeline(pr["branch"], head["sha"], "merge_request_event",
                         rng.uniform(pr["opened"], m["time"] - MINUTE))
            squash = rng.random() < 0.3
            mrs.append({"iid": pr["number"], "title": pr["title"], "state": "merged", "author": pr["author"],
                        "created_at": iso(pr["opened"], True), "updated_at": iso(pr["merged"] + 30, True),
                        "merged_at": iso(pr["merged"], True), "closed_at": None,
                        "merge_commit_sha": None if squash else head["sha"],
                        "squash_commit_sha": head["sha"] if squash else None, "sha": head["sha"],
                        "source_branch": pr["branch"], "target_branch": "main",
                        "commits": [c["sha"] for c in m["commits"]]})
        pipeline_of[head["sha"]] = pipeline("main", head["sha"], "push", m["time"] + 3)
    for d in svc.deployments:
        if p["deploy"] == "jenkins" and d["env"] == "production":
            continue
        sha = by_time[d["head"]]["commits"][-1]["sha"]
        ids["gl_deployment"] += 1
        status = "success" if d["status"] == "success" else "failed"
        deployments.append({"id": ids["gl_deployment"], "iid": 0, "ref": "main", "sha": sha,
                            "environment": d["env"], "status": status,
                            "created_at": iso(d["cut"], True), "updated_at": iso(d["finished"] + 1, True),
                            "pipeline_id": pipeline_of.get(sha, {}).get("id"),
                            "job": {"id": 500000 + ids["gl_deployment"], "status": status,
                                    "created_at": iso(d["cut"], True), "started_at": iso(d["started"], True),
                                    "finished_at": iso(d["finished"], True)}})
    for k, d in enumerate(deployments):
        d["iid"] = k + 1
    return {"id": ids["project"], "pipelines": pipelines, "deployments": deployments,
            "merge_requests": mrs, "commits": commits}


def jenkins_jobs(seed, svc, merges):
    """A folder per service: a build job (billing only; notifications
    builds on GitLab) and the production deployment job."""
    p = svc.p
    rng = _rng(seed, svc.name, "jenkins")
    by_time = {m["time"]: m for m in merges}
    folder = svc.name
    jobs = {folder: {"class": "com.cloudbees.hudson.plugins.folder.Folder"}}
    remote = "https://git.acme.example/%s.git" % p["repo"]
    if svc.name == "billing":
        builds = []
        for m in merges:
            conclusion, flaky = _run_outcome(rng, p)
            took = max(_lognormal(rng, p["ci_minutes"] * MINUTE, 0.35), 30)
            start = m["time"] + rng.uniform(30, 180)
            if start + took >= svc.anchor:
                continue
            result = {"success": "SUCCESS", "failure": rng.choice(["FAILURE", "FAILURE", "UNSTABLE"]),
                      "cancelled": "ABORTED"}[conclusion]
            sha = m["commits"][-1]["sha"]
            builds.append({"result": result, "timestamp": int(start * 1000), "duration": int(took * 1000),
                           "sha": sha, "remote_url": remote, "queuing_ms": int(rng.uniform(200, 20000)),
                           "causes": [{"_class": "hudson.triggers.SCMTrigger$SCMTriggerCause",
                                       "shortDescription": "Started by an SCM change"}]})
            if flaky:
                again = start + took + rng.uniform(5, 40) * MINUTE
                if again + took < svc.anchor:
                    builds.append({"result": "SUCCESS", "timestamp": int(again * 1000),
                                   "duration": int(took * 1000), "sha": sha, "remote_url": remote,
                                   "queuing_ms": int(rng.uniform(200, 20000)),
                                   "causes": [{"_class": "hudson.model.Cause$UserIdCause",
                                               "shortDescription": "Started by user Mona", "userId": "mona"}]})
        jobs[folder + "/build"] = {"class": "hudson.model.FreeStyleProject", "builds": _number(builds)}
    deploys = []
    for d in svc.deployments:
        if d["env"] != "production":
            continue
        deploys.append({"result": "SUCCESS" if d["status"] == "success" else "FAILURE",
                        "timestamp": int(d["started"] * 1000), "duration": int((d["finished"] - d["started"]) * 1000),
                        "sha": by_time[d["head"]]["commits"][-1]["sha"], "remote_url": remote,
                        "queuing_ms": int(rng.uniform(500, 60000)),
                        "parameters": [{"name": "ENVIRONMENT", "value": "production"},
                                       {"name": "HOTFIX", "value": "true" if d["kind"] == "hotfix" else "false"}],
                        "causes": [{"_class": "hudson.model.Cause$UserIdCause",
                                    "shortDescription": "Started by user Release Bot", "userId": "release-bot"}]})
    jobs[folder + "/deploy-production"] = {"class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                                           "builds": _number(deploys)}
    return jobs


def _number(builds):
    builds.sort(key=lambda b: b["timestamp"])
    for k, b in enumerate(builds):
        b["number"] = k + 1
        b["building"] = False
        b["estimatedDuration"] = b["duration"]
    return builds


def pagerduty_incidents(seed, services):
    rows = []
    for svc in services:
        kind, sid, summary = svc.p["pager"]
        rng = _rng(seed, svc.name, "pagerduty")
        for inc in svc.incidents:
            entries = [{"type": "trigger_log_entry", "created_at": iso(inc["opened"]), "agent": None,
                        "channel": "api"}]
            status = "triggered"
            last = inc["opened"]
            if inc["acknowledged"] is not None:
                entries.append({"type": "acknowledge_log_entry", "created_at": iso(inc["acknowledged"]),
                                "agent": rng.choice(["Ada Lovelace", "Grace Hopper", "Linus Pauling"])})
                status, last = "acknowledged", inc["acknowledged"]
            if inc["resolved"] is not None:
                entries.append({"type": "resolve_log_entry", "created_at": iso(inc["resolved"]),
                                "agent": rng.choice(["Ada Lovelace", "Grace Hopper"]), "channel": "website"})
                status, last = "resolved", inc["resolved"]
            rows.append({"opened": inc["opened"], "service": {"id": sid, "summary": summary},
                         "title": inc["title"], "urgency": inc["severity"], "status": status,
                         "created_at": iso(inc["opened"]), "updated_at": iso(last),
                         "last_status_change_at": iso(last),
                         "resolved_at": iso(inc["resolved"]) if inc["resolved"] is not None else None,
                         "priority": {"summary": "P1" if inc["severity"] == "high" else "P3"},
                         "teams": [svc.p["team"]], "assignees": ["Ada Lovelace"], "log_entries": entries})
    rows.sort(key=lambda r: r["opened"])
    for k, r in enumerate(rows):
        r.pop("opened")
        r["incident_number"] = k + 1
        r["id"] = "Q" + _sha(seed, "pd", k)[:13].upper()
    return rows


def opsgenie_incidents(seed, services):
    rows = []
    for svc in services:
        rng = _rng(seed, svc.name, "opsgenie")
        service_id = _uuid(seed, "opsgenie-service", svc.name)
        for inc in svc.incidents:
            row = {"opened": inc["opened"], "message": inc["title"],
                   "priority": "P1" if inc["severity"] == "high" and rng.random() < 0.5 else
                   "P2" if inc["severity"] == "high" else rng.choice(["P3", "P4"]),
                   "createdAt": iso(inc["opened"], True), "impactStartDate": iso(inc["opened"], True),
                   "impactedServices": [service_id], "tags": [svc.p["team"]], "ownerTeam": svc.p["team"]}
            if inc["resolved"] is None:
                row.update({"status": "open", "updatedAt": iso(inc["acknowledged"] or inc["opened"], True)})
            else:
                closed = rng.random() < 0.3
                row.update({"status": "closed" if closed else "resolved", "impactEndDate": iso(inc["resolved"], True),
                            "updatedAt": iso(inc["resolved"] + (rng.uniform(60, 900) if closed else 0), True)})
            rows.append(row)
    rows.sort(key=lambda r: r["opened"])
    for k, r in enumerate(rows):
        r.pop("opened")
        r["tinyId"] = str(k + 1)
        r["id"] = _uuid(seed, "opsgenie-incident", k)
    return rows


# ---------------------------------------------------------------------------
# The Backstage catalog
# ---------------------------------------------------------------------------

# Which services were scaffolded from a template, and what else the catalog
# holds: half the services come from the platform team's templates, the
# others predate them; notifications is being retired (deprecated, still
# deploying); a deprecated component that no longer ships and a website
# (not a service) complete the picture.
TEMPLATE_OF = {"checkout": "node-service", "payments": "node-service", "inventory": "node-service",
               "search": "python-service", "identity": "python-service"}
LIFECYCLE_OF = {"notifications": "deprecated", "identity": "experimental"}


def backstage_catalog(seed, services, token):
    from vendors import backstage
    components = []
    for svc in services:
        p = svc.p
        if "code" not in p:
            continue
        slug = "github.com/project-slug" if p["code"] == "github" else "gitlab.com/project-slug"
        components.append({"name": svc.name, "team": p["team"], "type": "service",
                           "lifecycle": LIFECYCLE_OF.get(svc.name, "production"),
                           "template": TEMPLATE_OF.get(svc.name), "system": "shop",
                           "annotations": {slug: p["repo"], "backstage.io/techdocs-ref": "dir:."},
                           "tags": [p["code"]]})
    components.append({"name": "legacy-reports", "team": "finance-eng", "type": "service", "lifecycle": "deprecated",
                       "description": "nightly CSV reports, replaced by the data warehouse", "tags": ["cobol"]})
    components.append({"name": "storefront-web", "team": "storefront", "type": "website",
                       "template": "web-app", "tags": ["react"]})
    teams = sorted({c["team"] for c in components} | {"platform"})
    world = backstage.catalog(components, teams, users_per_team=2,
                              templates=("node-service", "python-service", "web-app"), token=token)
    world.pop("_version", None)
    return world
