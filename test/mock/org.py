"""A generated organisation: one company's delivery history, consistent
across every vendor the mock serves.

The demo (test/demo/run) and the dashboard test (test/t/050_dashboards.pl)
load it with `mock_api.py --org seed=7,anchor=...` (or POST /_control/org).
From a seed and an anchor instant it builds, for `days` days up to the
anchor, eight services with their own habits:

    service        code    production deploys by      incidents  SLO (Prometheus)
    checkout       GitHub  GitHub Deployments API     PagerDuty  availability 99.9%, burning now
    payments       GitHub  GitHub Deployments API     PagerDuty  availability 99.95%
    search         GitHub  a "Deploy" workflow        PagerDuty  latency 99% (28 d), slow burn
    billing        GitHub  Jenkins (staging: GitHub)  PagerDuty
    inventory      GitLab  GitLab                     Opsgenie
    identity       GitLab  GitLab (after staging)     Opsgenie
    shipping       GitLab  GitLab                     Opsgenie
    notifications  GitLab  Jenkins (staging: GitLab)  Opsgenie

Each service is a timeline: merges to main (pull or merge requests of a
few commits), deployments cut from the head of main (or, after staging,
from what staging runs), some that fail and are retried, incidents that
follow some deployments (the change failure rate) or come from nowhere,
hotfix deployments made while an incident is open (rework), CI runs for
every push and pull request (some flaky, re-run), and request counts for
the SLOs, worse while an incident lasts.  The platform team's systems
(databases, clusters) page through Opsgenie too, under the service
"platform", which deploys nothing.  At the anchor, checkout has just
shipped a bad deployment: its incident is open and its availability SLO
burns fast enough to page; search has burnt slowly for a day (a ticket).

A Backstage catalog (org_worlds.backstage_catalog) lists the services as
components owned by their teams (Groups with Users), five of them
scaffolded from the platform team's two service templates, notifications
deprecated, plus a deprecated component that no longer ships and a
website; the manifest names three golden paths (the two templates and
the shared "Deploy" workflow) for register.sql to define.

Everything comes from random.Random streams seeded with strings (which
Python seeds through SHA-512, independent of PYTHONHASHSEED), one per
service and purpose, so that the same seed and anchor give the same
organisation, and changing one service's habits leaves the others alone.

This module draws the timelines and the SLO traffic; org_worlds.py writes
them as each vendor's world.  generate(params) returns {"anchor",
"worlds": {vendor: world JSON}, "live", "manifest"}: "live" makes the
Prometheus world compute request counts on demand for any minute up to
the present (the SLOs go on after the anchor), and the manifest lists
the sources and SLOs a database needs to read this organisation
(test/demo/register.sql turns it into engineering.add_source() calls).
"""

import bisect
import datetime
import hashlib
import math
import random
import time
import uuid

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY

TOKENS = {
    "github": "ghs_demoOrgToken0000000000000000000000",
    "gitlab": "glpat-demo-org-token-000000",
    "jenkins": "11demo22org33jenkins44token55",
    "pagerduty": "u+demoOrgPagerDutyKey",
    "opsgenie": "0d3e5f7a-demo-org0-gen1-e00000000000",
    "prometheus": "demo-prometheus-token",
    "backstage": "demo-backstage-static-token",
}
JENKINS_USER = "metrics-bot"

# How each service works.  Rates are per week; durations in seconds.
#   merges_per_week   pull/merge requests landing on main
#   deploys_per_week  production deployment cuts (a cut without new code is skipped)
#   staging_per_week  staging deployments (production then ships what staging runs)
#   delay             median time from cut (head of main chosen) to finished deployment
#   fail_deploy       share of deployments whose first attempt fails (retried)
#   cfr               share of successful production deployments followed by an incident
#   ttr               median time to restore; ttr_sigma its log-normal spread
#   hotfix            share of incidents fixed by a hotfix deployment while open
#   infra_per_30d     incidents that no deployment caused
#   review, coding    median hours a request waits for review, and was worked on
#   ci_minutes, ci_fail, flaky   CI run duration, failure share, share of failures that pass on re-run
SERVICES = [
    dict(name="checkout", team="storefront", code="github", repo="acme/checkout", deploy="github",
         merges_per_week=30, deploys_per_week=28, delay=25 * MINUTE, deploy_minutes=8,
         fail_deploy=0.03, cfr=0.035, ttr=28 * MINUTE, ttr_sigma=0.5, hotfix=0.35, infra_per_30d=0.4,
         review=3, coding=6, ci_minutes=7, ci_fail=0.08, flaky=0.6,
         pager=("pagerduty", "PCHK7QZ", "Checkout API")),
    dict(name="payments", team="payments", code="github", repo="acme/payments", deploy="github",
         merges_per_week=12, deploys_per_week=7, delay=20 * HOUR, deploy_minutes=12,
         fail_deploy=0.05, cfr=0.08, ttr=2.2 * HOUR, ttr_sigma=0.7, hotfix=0.3, infra_per_30d=0.5,
         review=8, coding=16, ci_minutes=14, ci_fail=0.10, flaky=0.4,
         pager=("pagerduty", "PPAY3KD", "Payments Gateway")),
    dict(name="search", team="discovery", code="github", repo="acme/search", deploy="workflow",
         merges_per_week=16, deploys_per_week=12, delay=40 * MINUTE, deploy_minutes=6,
         fail_deploy=0.04, cfr=0.05, ttr=50 * MINUTE, ttr_sigma=0.6, hotfix=0.3, infra_per_30d=0.5,
         review=5, coding=10, ci_minutes=11, ci_fail=0.12, flaky=0.7,
         pager=("pagerduty", "PSRC9WE", "Search")),
    dict(name="billing", team="finance-eng", code="github", repo="acme/billing", deploy="jenkins",
         merges_per_week=7, staging_per_week=2.5, deploys_per_week=0.2, delay=6 * DAY, deploy_minutes=35,
         fail_deploy=0.15, cfr=0.5, ttr=30 * HOUR, ttr_sigma=0.6, hotfix=0.6, infra_per_30d=0.8,
         review=30, coding=40, ci_minutes=25, ci_fail=0.18, flaky=0.3,
         pager=("pagerduty", "PBIL2XA", "Billing Batch")),
    dict(name="inventory", team="fulfilment", code="gitlab", repo="acme/inventory", deploy="gitlab",
         merges_per_week=22, deploys_per_week=20, delay=35 * MINUTE, deploy_minutes=6,
         fail_deploy=0.03, cfr=0.05, ttr=40 * MINUTE, ttr_sigma=0.5, hotfix=0.3, infra_per_30d=0.4,
         review=4, coding=8, ci_minutes=9, ci_fail=0.07, flaky=0.5,
         pager=("opsgenie", "inventory")),
    dict(name="identity", team="access", code="gitlab", repo="platform/identity", deploy="gitlab",
         merges_per_week=9, staging_per_week=5, deploys_per_week=4, delay=1.5 * DAY, deploy_minutes=10,
         fail_deploy=0.06, cfr=0.12, ttr=3 * HOUR, ttr_sigma=0.8, hotfix=0.3, infra_per_30d=0.5,
         review=10, coding=20, ci_minutes=12, ci_fail=0.09, flaky=0.4,
         pager=("opsgenie", "identity")),
    dict(name="shipping", team="fulfilment", code="gitlab", repo="logistics/shipping", deploy="gitlab",
         merges_per_week=5, deploys_per_week=0.7, delay=4 * DAY, deploy_minutes=20,
         fail_deploy=0.10, cfr=0.25, ttr=9 * HOUR, ttr_sigma=0.7, hotfix=0.4, infra_per_30d=0.6,
         review=20, coding=30, ci_minutes=18, ci_fail=0.14, flaky=0.3,
         pager=("opsgenie", "shipping")),
    dict(name="notifications", team="comms", code="gitlab", repo="comms/notifications", deploy="jenkins",
         merges_per_week=6, staging_per_week=2, deploys_per_week=0.45, delay=2 * DAY, deploy_minutes=15,
         fail_deploy=0.12, cfr=0.22, ttr=16 * HOUR, ttr_sigma=0.8, hotfix=0.5, infra_per_30d=0.7,
         review=14, coding=24, ci_minutes=10, ci_fail=0.11, flaky=0.4,
         pager=("opsgenie", "notifications")),
]

# The platform team's own services (databases, clusters, network) page
# through Opsgenie too; nothing is deployed under that name, so their
# incidents count for time to restore but never as change failures.
PLATFORM = dict(name="platform", team="platform-infra", incidents_per_30d=16, ttr=70 * MINUTE, ttr_sigma=0.9,
                pager=("opsgenie", "platform"))

# SLOs fed by Prometheus: request counts per minute, a baseline share of bad
# requests, and how bad incidents of the service make it.
SLOS = [
    dict(name="checkout-availability", service="checkout", objective=0.999, period="30 days",
         description="checkout API requests answered without a 5xx",
         rpm=1200, baseline=0.0002, incident_ratio=(0.01, 0.05), metric="http_requests_total",
         good_filter='code!~"5.."', burn=(-45 * MINUTE, 4 * HOUR, 0.03)),
    dict(name="payments-availability", service="payments", objective=0.9995, period="30 days",
         description="payment authorisations that did not fail on our side",
         rpm=300, baseline=0.00008, incident_ratio=(0.002, 0.01), metric="payment_requests_total",
         good_filter='outcome!="error"', burn=None),
    dict(name="search-latency", service="search", objective=0.99, period="28 days",
         description="search queries answered within 300 ms",
         rpm=2000, baseline=0.003, incident_ratio=(0.05, 0.15), metric="search_queries_total",
         good_filter='le="0.3"', burn=(-30 * HOUR, 6 * HOUR, 0.032)),
]

TITLES = {
    "checkout": ["Elevated 5xx on checkout API", "Checkout latency above 2 s", "Cart totals wrong for discounts",
                 "Payment step times out", "Checkout pods crash-looping"],
    "payments": ["Card authorisations failing", "Payment provider webhooks delayed", "Refund queue stuck",
                 "Duplicate captures reported", "3-D Secure redirect broken"],
    "search": ["Search results empty for some queries", "Search p99 latency above 1 s", "Indexer lagging",
               "Autocomplete returns 500", "Relevance regression after ranking change"],
    "billing": ["Invoice run failed", "Tax amounts wrong on invoices", "Billing batch stuck",
                "Dunning emails sent twice", "Ledger export missing rows"],
    "inventory": ["Stock levels not updating", "Reservation API errors", "Inventory sync lagging",
                  "Negative stock shown", "Warehouse feed rejected"],
    "identity": ["Login failures for SSO users", "Token refresh errors", "Password reset emails delayed",
                 "MFA prompts failing", "Session store latency"],
    "shipping": ["Label printing fails", "Carrier rates missing", "Tracking updates delayed",
                 "Shipment creation 500s", "Address validation down"],
    "platform": ["Database primary failover", "Kubernetes node pool exhausted", "Disk 90% full on db-3",
                 "Message broker partition offline", "DNS resolution errors", "Certificate expiring in 24 h",
                 "Object storage latency", "Egress NAT saturated"],
    "notifications": ["Push notifications delayed", "Email bounces spike", "SMS provider errors",
                      "Notification queue backlog", "Templates render blank"],
}


# ---------------------------------------------------------------------------
# Small tools
# ---------------------------------------------------------------------------

def _rng(seed, *parts):
    return random.Random(":".join([str(seed)] + [str(p) for p in parts]))


def _poisson(rng, lam):
    """Knuth's method; fine for the small rates used here."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(int(round(rng.gauss(lam, math.sqrt(lam)))), 0)
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _lognormal(rng, median, sigma):
    return median * math.exp(sigma * rng.gauss(0, 1))


def _sha(*parts):
    return hashlib.sha1(":".join(str(p) for p in parts).encode()).hexdigest()


def _uuid(*parts):
    return str(uuid.UUID(hex=hashlib.md5(":".join(str(p) for p in parts).encode()).hexdigest()))


def iso(t, ms=False):
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    if ms:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_anchor(value):
    if value in (None, "", "now"):
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        return float(int(now) // 60 * 60)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace("Z", "+00:00")
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _release_train(rng, start, end, per_week, first_hour, last_hour):
    """Event times for teams that release less than weekly: one every
    7 / per_week days (give or take a quarter), moved to a working day, so
    that a slow team still ships at its pace in any window of the history."""
    gap = 7 * DAY / per_week
    times = []
    t = start + rng.uniform(0, gap)
    while t < end:
        day = math.floor(t / DAY) * DAY
        while datetime.datetime.fromtimestamp(day, datetime.timezone.utc).weekday() >= 5:
            day += DAY
        at = round(day + (first_hour + rng.random() * (last_hour - first_hour)) * HOUR)
        if start <= at < end:
            times.append(at)
        t += gap * rng.uniform(0.75, 1.25)
    return times


def _daily_events(rng, start, end, per_week, first_hour, last_hour, weekend_share=0.04):
    """Event times between start and end: a Poisson number per day, mostly on
    working days (UTC), spread over working hours; below one a week, a
    release train (_release_train)."""
    if 0 < per_week < 1:
        return _release_train(rng, start, end, per_week, first_hour, last_hour)
    times = []
    day = math.floor(start / DAY) * DAY
    per_day = per_week / 5.0
    while day < end:
        weekday = datetime.datetime.fromtimestamp(day, datetime.timezone.utc).weekday()
        lam = per_day * (weekend_share if weekday >= 5 else 1.0)
        for _ in range(_poisson(rng, lam)):
            t = day + (first_hour + rng.random() * (last_hour - first_hour)) * HOUR
            if start <= t < end:
                times.append(round(t))
        day += DAY
    return sorted(set(times))


# ---------------------------------------------------------------------------
# One service's timeline
# ---------------------------------------------------------------------------

class Service:
    """Merges, deployments and incidents of one service, in plain epochs."""

    def __init__(self, seed, p, start, anchor, scale):
        self.p = p
        self.name = p["name"]
        self.seed = seed
        self.start, self.anchor = start, anchor
        rng = _rng(seed, self.name, "timeline")
        self.merges = _daily_events(rng, start, anchor - 20 * MINUTE, p["merges_per_week"] * scale, 8, 19)
        self.deployments = []           # dicts: env, cut, started, finished, status, head (merge time), kind
        self.incidents = []             # dicts: opened, acknowledged, resolved, severity, cause (deployment) ...
        self._plan_deployments(rng, scale)
        self._plan_incidents(_rng(seed, self.name, "incidents"), scale)
        self._place_heads()

    # -- deployments --------------------------------------------------------

    def _finish(self, rng, cut, previous_finish):
        p = self.p
        finished = max(cut + _lognormal(rng, p["delay"], 0.5), (previous_finish or 0) + 2 * MINUTE)
        took = max(_lognormal(rng, p["deploy_minutes"] * MINUTE, 0.3), 60)
        return round(max(finished - took, cut)), round(finished)

    def _attempts(self, rng, env, cut, head, previous_finish, kind="regular"):
        """A deployment, and before it a failed attempt now and then."""
        out = []
        started, finished = self._finish(rng, cut, previous_finish)
        if rng.random() < self.p["fail_deploy"] and kind == "regular":
            failed_at = round(started + (finished - started) * 0.4)
            out.append(dict(env=env, cut=cut, started=started, finished=failed_at, status="failure",
                            head=head, kind="failed"))
            started = failed_at + round(rng.uniform(5, 25) * MINUTE)
            finished = max(finished, started + 3 * MINUTE)
        out.append(dict(env=env, cut=cut, started=started, finished=finished, status="success",
                        head=head, kind=kind))
        return out

    def _plan_deployments(self, rng, scale):
        p = self.p
        end = self.anchor - (55 * MINUTE if self.name == "checkout" else 0)
        staging = []
        if p.get("staging_per_week"):
            last_head, last_finish = None, None
            for cut in _daily_events(rng, self.start, end, p["staging_per_week"] * scale, 9, 17):
                i = bisect.bisect_right(self.merges, cut) - 1
                if i < 0 or self.merges[i] == last_head:
                    continue
                started, finished = cut + 5 * MINUTE, cut + round(rng.uniform(10, 30) * MINUTE)
                if finished >= end:
                    continue
                staging.append(dict(env="staging", cut=cut, started=started, finished=finished,
                                    status="success", head=self.merges[i], kind="regular"))
                last_head, last_finish = self.merges[i], finished
        def head_at(t):
            if staging:
                ready = [d["head"] for d in staging if d["finished"] <= t]
                return ready[-1] if ready else None
            i = bisect.bisect_right(self.merges, t) - 1
            return self.merges[i] if i >= 0 else None

        last_head, last_finish = None, None
        cuts = _daily_events(rng, self.start, end, p["deploys_per_week"] * scale, 9, 17)
        for k, cut in enumerate(cuts):
            head = head_at(cut)
            if (head is None or head == last_head) and p["deploys_per_week"] * scale < 1:
                # a release train waits for something new to ship rather than skip a release
                ready = sorted(d["finished"] for d in staging) if staging else self.merges
                later = [t for t in ready if t > cut and head_at(t) not in (None, last_head)]
                if later and (k + 1 == len(cuts) or later[0] + 2 * HOUR < cuts[k + 1]):
                    cut = later[0] + 2 * HOUR
                    head = head_at(cut)
            if head is None or head == last_head:
                continue
            attempts = self._attempts(rng, "production", cut, head, last_finish)
            if attempts[-1]["finished"] >= end:
                continue
            self.deployments.extend(attempts)
            last_head, last_finish = head, attempts[-1]["finished"]
        if self.name == "checkout":
            # the deployment that is hurting checkout right now
            i = bisect.bisect_right(self.merges, self.anchor - 70 * MINUTE) - 1
            head = self.merges[i]
            self.deployments.append(dict(env="production", cut=self.anchor - 62 * MINUTE,
                                         started=self.anchor - 58 * MINUTE, finished=self.anchor - 50 * MINUTE,
                                         status="success", head=head, kind="regular"))
        self.deployments.extend(staging)

    def production(self):
        return sorted((d for d in self.deployments if d["env"] == "production" and d["status"] == "success"),
                      key=lambda d: d["finished"])

    # -- incidents ----------------------------------------------------------

    def _incident(self, rng, opened, cause=None, ttr_factor=1.0):
        p = self.p
        ttr = max(_lognormal(rng, p["ttr"] * ttr_factor, p["ttr_sigma"]), 6 * MINUTE)
        inc = dict(opened=round(opened), resolved=round(opened + ttr), cause=cause,
                   severity="high" if rng.random() < 0.55 else "low",
                   acknowledged=round(opened + rng.uniform(1, 12) * MINUTE) if rng.random() < 0.85 else None,
                   title=rng.choice(TITLES[self.name]))
        if inc["acknowledged"] is not None and inc["acknowledged"] > inc["resolved"]:
            inc["acknowledged"] = inc["resolved"]
        return inc

    def _plan_incidents(self, rng, scale):
        p = self.p
        prod = self.production()
        cuts = sorted(d["cut"] for d in prod)
        hotfixes = []
        for k, d in enumerate(prod):
            if rng.random() >= p["cfr"] or d["finished"] >= self.anchor - 55 * MINUTE:
                continue
            nxt = prod[k + 1]["finished"] if k + 1 < len(prod) else self.anchor
            gap = nxt - d["finished"]
            if gap < 10 * MINUTE:
                continue
            opened = d["finished"] + rng.uniform(3 * MINUTE, min(3 * HOUR, 0.7 * gap))
            inc = self._incident(rng, opened, cause=d)
            if rng.random() < p["hotfix"] and inc["resolved"] - inc["opened"] > 20 * MINUTE:
                fix = round(inc["opened"] + (inc["resolved"] - inc["opened"]) * rng.uniform(0.3, 0.6))
                j = bisect.bisect_right(cuts, fix)
                if (j >= len(cuts) or cuts[j] > fix + 15 * MINUTE) and fix + 20 * MINUTE < self.anchor:
                    hotfixes.append(dict(env="production", cut=fix + 2 * MINUTE, started=fix + 4 * MINUTE,
                                         finished=fix + 12 * MINUTE, status="success", head=fix,
                                         kind="hotfix"))
                    inc["resolved"] = max(inc["resolved"], fix + 18 * MINUTE)
            if inc["resolved"] > self.anchor:
                inc["resolved"] = None
            self.incidents.append(inc)
            if rng.random() < 0.3 and inc["resolved"] is not None:
                # the same failure paged twice (another alert, another incident)
                echo = dict(inc, opened=round(inc["opened"] + rng.uniform(2, 20) * MINUTE), severity="low",
                            title=rng.choice(TITLES[self.name]))
                echo["resolved"] = max(echo["opened"] + 5 * MINUTE,
                                       round(inc["resolved"] - rng.uniform(0, 0.5) * (inc["resolved"] - inc["opened"])))
                echo["acknowledged"] = min(echo["opened"] + 4 * MINUTE, echo["resolved"])
                self.incidents.append(echo)
        for _ in range(_poisson(rng, p["infra_per_30d"] * scale * (self.anchor - self.start) / (30 * DAY))):
            opened = rng.uniform(self.start + DAY, self.anchor - 6 * HOUR)
            inc = self._incident(rng, opened, ttr_factor=1.3)
            if inc["resolved"] > self.anchor - HOUR:
                inc["resolved"] = None if rng.random() < 0.5 else round(self.anchor - HOUR)
            self.incidents.append(inc)
        if self.name == "checkout":
            bad = [d for d in self.deployments if d["finished"] == self.anchor - 50 * MINUTE][0]
            self.incidents.append(dict(opened=round(self.anchor - 42 * MINUTE),
                                       acknowledged=round(self.anchor - 37 * MINUTE), resolved=None,
                                       cause=bad, severity="high", title="Elevated 5xx on checkout API"))
        # a hotfix is a merge of its own (one commit) shipped straight away
        for h in hotfixes:
            bisect.insort(self.merges, h["head"])
        self.deployments.extend(hotfixes)
        self.incidents.sort(key=lambda i: i["opened"])

    def _place_heads(self):
        """After hotfixes went out, a later regular deployment ships at least
        what production already runs (never rolls a hotfix back)."""
        prod = sorted((d for d in self.deployments if d["env"] == "production"), key=lambda d: d["started"])
        newest = None
        for d in prod:
            if newest is not None and d["head"] < newest and d["kind"] != "hotfix":
                d["head"] = newest
            if d["status"] == "success":
                newest = max(newest or d["head"], d["head"])
        self.deployments.sort(key=lambda d: (d["started"], d["env"]))


class Platform:
    """Incidents of the platform team's systems: no deployments, no code."""

    def __init__(self, seed, start, anchor, scale):
        self.p = PLATFORM
        self.name = PLATFORM["name"]
        self.deployments = []
        rng = _rng(seed, self.name, "incidents")
        self.incidents = []
        n = _poisson(rng, PLATFORM["incidents_per_30d"] * scale * (anchor - start) / (30 * DAY))
        for _ in range(n):
            opened = round(rng.uniform(start + HOUR, anchor - 3 * HOUR))
            ttr = max(_lognormal(rng, PLATFORM["ttr"], PLATFORM["ttr_sigma"]), 5 * MINUTE)
            resolved = round(opened + ttr)
            self.incidents.append(dict(opened=opened, resolved=resolved if resolved < anchor else None,
                                       acknowledged=min(opened + round(rng.uniform(1, 15) * MINUTE), resolved),
                                       severity="high" if rng.random() < 0.3 else "low", cause=None,
                                       title=rng.choice(TITLES[self.name])))
        # one still open: a slow disk nobody has fixed yet
        self.incidents.append(dict(opened=round(anchor - 5 * HOUR), resolved=None,
                                   acknowledged=round(anchor - 4.8 * HOUR), severity="low", cause=None,
                                   title="Disk 90% full on db-3"))
        self.incidents.sort(key=lambda i: i["opened"])


# ---------------------------------------------------------------------------
# SLO traffic: request counts per minute, computed on demand
# ---------------------------------------------------------------------------

def _mix(*values):
    """A 64-bit integer hash of integers (splitmix64 steps): cheap noise."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x


class SliModel:
    """Good and total requests of one SLO for the minute ending at any t."""

    def __init__(self, seed, slo, incidents, anchor):
        self.slo = slo
        self.key = _mix(int(_sha(seed, slo["name"])[:15], 16))
        self.windows = []               # (start, end, bad share)
        lo, hi = slo["incident_ratio"]
        for k, inc in enumerate(incidents):
            share = lo + (hi - lo) * ((_mix(self.key, k) % 1000) / 1000.0)
            if inc["severity"] == "low":
                share /= 3
            end = inc["resolved"] if inc["resolved"] is not None else anchor + 4 * HOUR
            self.windows.append((inc["opened"], end, share))
        if slo["burn"]:
            start, end, share = slo["burn"]
            self.windows.append((anchor + start, anchor + end, share))
        self.windows.sort()
        self.starts = [w[0] for w in self.windows]

    def bad_share(self, t):
        share = self.slo["baseline"]
        i = bisect.bisect_right(self.starts, t)
        for w in self.windows[max(i - 8, 0):i]:
            if w[0] <= t < w[1]:
                share = max(share, w[2])
        return share

    def minute(self, t):
        """(good, total) for the minute (t - 60, t], t a whole minute."""
        m = int(t // 60)
        dt = datetime.datetime.fromtimestamp(m * 60, datetime.timezone.utc)
        hour = dt.hour + dt.minute / 60.0
        daily = 0.35 + 0.65 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24))
        weekly = 0.7 if dt.weekday() >= 5 else 1.0
        noise = _mix(self.key, m)
        total = int(self.slo["rpm"] * daily * weekly * (0.92 + 0.16 * ((noise & 0xFFFF) / 65535.0)))
        expected = total * self.bad_share(m * 60)
        bad = int(expected * (0.6 + 0.8 * (((noise >> 16) & 0xFFFF) / 65535.0)) + ((noise >> 32) & 0xFF) / 256.0)
        bad = min(bad, total)
        return total - bad, total


class LiveCounts(dict):
    """The values of an SLO's good or total query for the Prometheus mock:
    computed for any whole minute from `first` up to the present, so that the
    SLOs stay live after the anchor (a real Prometheus has no samples from
    the future, and neither does this).  It is an (empty) dict so that the
    world still serialises; values set by tests (mutate) take precedence."""

    def __init__(self, model, good, first):
        super().__init__()
        self.model, self.good, self.first = model, good, first

    def get(self, key, default=None):
        if dict.__contains__(self, key):
            return dict.get(self, key)
        t = int(key)
        if t < self.first or t % 60 or t > time.time():
            return default
        good, total = self.model.minute(t)
        return good if self.good else total


# ---------------------------------------------------------------------------
# The organisation
# ---------------------------------------------------------------------------

def generate(params):
    """params: seed (default 7), anchor (ISO time, epoch, or "now": the
    current minute), days (history length, default 180), scale (multiplies
    every rate, default 1), sli_days (how far back the Prometheus sources
    read, default 35: a 30-day period and some)."""
    seed = int(params.get("seed", 7))
    anchor = parse_anchor(params.get("anchor"))
    days = float(params.get("days", 180))
    scale = float(params.get("scale", 1))
    start = anchor - days * DAY
    import org_worlds as w

    services = [Service(seed, p, start, anchor, scale) for p in SERVICES]
    ids = {"run": 9_000_000, "deployment": 400_000, "status": 8_000_000, "repo": 0, "pipeline": 2_000_000,
           "pipeline_base": 0, "project": 0, "gl_deployment": 60_000}
    github = {"token": TOKENS["github"], "repos": {}}
    gitlab = {"token": TOKENS["gitlab"], "projects": {}}
    jenkins = {"user": JENKINS_USER, "token": TOKENS["jenkins"], "jobs": {}}
    for svc in services:
        merges = w.history(seed, svc)
        if svc.p["code"] == "github":
            ids["repo"] += 1
            github["repos"][svc.p["repo"]] = w.github_repo(seed, svc, merges, ids)
        else:
            ids["project"] += 1
            ids["pipeline_base"] = ids["pipeline"]
            gitlab["projects"][svc.p["repo"]] = w.gitlab_project(seed, svc, merges, ids)
        if svc.p["deploy"] == "jenkins":
            jenkins["jobs"].update(w.jenkins_jobs(seed, svc, merges))
    pd_services = [s for s in services if s.p["pager"][0] == "pagerduty"]
    og_services = [s for s in services if s.p["pager"][0] == "opsgenie"] + [Platform(seed, start, anchor, scale)]
    worlds = {
        "github": github, "gitlab": gitlab, "jenkins": jenkins,
        "pagerduty": {"token": TOKENS["pagerduty"], "time_zone": "-07:00",
                      "incidents": w.pagerduty_incidents(seed, pd_services)},
        "opsgenie": {"token": TOKENS["opsgenie"], "incidents": w.opsgenie_incidents(seed, og_services)},
    }
    models = {}
    for slo in SLOS:
        svc = next(s for s in services if s.name == slo["service"])
        models[slo["name"]] = SliModel(seed, slo, svc.incidents, anchor)
    queries = {}
    for slo in SLOS:
        good, total = _slo_queries(slo)
        queries[good.replace("$step", "1m")] = {"values": {}, "slo": slo["name"], "good": True}
        queries[total.replace("$step", "1m")] = {"values": {}, "slo": slo["name"], "good": False}
    worlds["prometheus"] = {"token": TOKENS["prometheus"], "queries": queries}
    worlds["backstage"] = w.backstage_catalog(seed, services, TOKENS["backstage"])

    def live(world):
        for spec in world["queries"].values():
            spec["values"] = LiveCounts(models[spec["slo"]], spec["good"], int(start) // 60 * 60)

    return {"anchor": iso(anchor), "seed": seed, "worlds": worlds, "sli": models, "live": {"prometheus": live},
            "manifest": manifest(seed, anchor, start, services + og_services[-1:],
                                 float(params.get("sli_days", 35)))}


def _slo_queries(slo):
    """The PromQL of an SLO's good and total events per step ($step: the
    connector puts the source's step there)."""
    good = 'sum(increase(%s{service="%s",%s}[$step]))' % (slo["metric"], slo["service"], slo["good_filter"])
    total = 'sum(increase(%s{service="%s"}[$step]))' % (slo["metric"], slo["service"])
    return good, total


def manifest(seed, anchor, start, services, sli_days=35):
    """What a database needs to read this organisation: sources (base URLs
    relative to the mock's root) and SLOs."""
    since = iso(start - DAY)
    sources = []
    for svc in services:
        p = svc.p
        if "code" not in p:
            continue
        config = {"since": since}
        if p["code"] == "github":
            config["repository"] = p["repo"]
            if p["deploy"] == "workflow":
                config["deployment_workflows"] = "^Deploy$"
        else:
            config["project"] = p["repo"]
        sources.append({"name": "%s-%s" % (p["code"], svc.name), "kind": p["code"], "path": "/" + p["code"],
                        "config": config, "token": TOKENS[p["code"]]})
    jenkins_services = [s.name for s in services if s.p.get("deploy") == "jenkins"]
    sources.append({"name": "jenkins", "kind": "jenkins", "path": "/jenkins", "token": TOKENS["jenkins"],
                    "config": {"jobs": jenkins_services, "user": JENKINS_USER, "since": since,
                               "service_map": {s: s for s in jenkins_services},
                               "deployment_jobs": "/deploy-", "environment_parameter": "ENVIRONMENT"}})
    sources.append({"name": "pagerduty", "kind": "pagerduty", "path": "/pagerduty", "token": TOKENS["pagerduty"],
                    "config": {"since": since, "service_map": {s.p["pager"][1]: s.name for s in services
                                                               if s.p["pager"][0] == "pagerduty"}}})
    og = [s for s in services if s.p["pager"][0] == "opsgenie"]
    sources.append({"name": "opsgenie", "kind": "opsgenie", "path": "/opsgenie", "token": TOKENS["opsgenie"],
                    "config": {"since": since, "query": "*",
                               "service_map": {_uuid(seed, "opsgenie-service", s.name): s.name for s in og}}})
    slos = []
    for slo in SLOS:
        slos.append({k: slo[k] for k in ("name", "service", "objective", "period", "description")})
        good, total = _slo_queries(slo)
        sources.append({"name": "prometheus-" + slo["name"], "kind": "prometheus", "path": "/prometheus",
                        "token": TOKENS["prometheus"],
                        "config": {"slo": slo["name"], "good_query": good, "total_query": total, "step": "1m",
                                   "since": iso(max(anchor - sli_days * DAY, start))}})
    # the catalog, and the golden paths the platform team defined
    sources.append({"name": "backstage", "kind": "backstage", "path": "/backstage/api/catalog",
                    "token": TOKENS["backstage"],
                    "config": {"filter": "kind=component,kind=api,kind=template,kind=group,kind=user"}})
    golden_paths = [
        {"name": "node-service template", "kind": "template", "pattern": "template:default/node-service",
         "description": "services scaffolded from the Node.js service template"},
        {"name": "python-service template", "kind": "template", "pattern": "template:default/python-service",
         "description": "services scaffolded from the Python service template"},
        {"name": "deploy workflow", "kind": "pipeline", "pattern": "^Deploy$",
         "description": "production deployments built by the shared GitHub Actions Deploy workflow"}]
    return {"seed": seed, "anchor": iso(anchor), "since": since, "golden_paths": golden_paths,
            "services": [{"name": s.name, "team": s.p["team"], "code": s.p.get("code"),
                          "repository": s.p.get("repo"), "deploys": s.p.get("deploy"),
                          "incidents": s.p["pager"][0]} for s in services],
            "sources": sources, "slos": slos}


def summary(org):
    """Counts per vendor, for logs and the demo's banner."""
    w = org["worlds"]
    return {
        "github": {"repos": len(w["github"]["repos"]),
                   "runs": sum(len(r["runs"]) for r in w["github"]["repos"].values()),
                   "commits": sum(len(r["commits"]) for r in w["github"]["repos"].values()),
                   "pulls": sum(len(r["pulls"]) for r in w["github"]["repos"].values()),
                   "deployments": sum(len(r["deployments"]) for r in w["github"]["repos"].values())},
        "gitlab": {"projects": len(w["gitlab"]["projects"]),
                   "pipelines": sum(len(p["pipelines"]) for p in w["gitlab"]["projects"].values()),
                   "commits": sum(len(p["commits"]) for p in w["gitlab"]["projects"].values()),
                   "merge_requests": sum(len(p["merge_requests"]) for p in w["gitlab"]["projects"].values()),
                   "deployments": sum(len(p["deployments"]) for p in w["gitlab"]["projects"].values())},
        "jenkins": {"builds": sum(len(j.get("builds", [])) for j in w["jenkins"]["jobs"].values())},
        "pagerduty": {"incidents": len(w["pagerduty"]["incidents"])},
        "opsgenie": {"incidents": len(w["opsgenie"]["incidents"])},
        "backstage": {"entities": len(w["backstage"]["entities"])},
    }


if __name__ == "__main__":
    import json
    import sys
    params = dict(a.split("=", 1) for a in sys.argv[1:])
    org = generate(params)
    print(json.dumps(summary(org), indent=1))
