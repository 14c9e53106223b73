"""Pieces shared by the mock's core and its vendor modules."""

import datetime
import json
import urllib.parse


class Request:
    """What a vendor handler sees of a request."""

    def __init__(self, method, prefix, path, query, headers, base):
        self.method = method
        self.prefix = prefix            # "github"
        self.path = path                # path after the prefix, e.g. /repos/a/b
        self.raw_query = query
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.headers = headers          # lower-case name -> value
        self.base = base                # http://127.0.0.1:PORT/github

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default


class Response:
    def __init__(self, status, body=b"", headers=None, content_type="application/json; charset=utf-8"):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = list(headers or [])
        self.content_type = content_type


def json_response(status, obj, headers=None):
    return Response(status, json.dumps(obj, separators=(",", ":"), ensure_ascii=False), headers)


class NotFound(Exception):
    pass


def parse_time(value):
    """ISO 8601 with Z or an offset -> epoch seconds (float); None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def iso(epoch, offset_minutes=0):
    """epoch seconds -> ISO 8601, with Z or with the given offset (e.g. +02:00)."""
    tz = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    dt = datetime.datetime.fromtimestamp(int(epoch), tz)
    if offset_minutes == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.isoformat()


def page_args(req, default=30, maximum=100):
    """(page, per_page) from the query, clamped the way GitHub and GitLab do."""
    try:
        per_page = int(req.arg("per_page", default))
    except ValueError:
        per_page = default
    try:
        page = int(req.arg("page", 1))
    except ValueError:
        page = 1
    return max(page, 1), min(max(per_page, 1), maximum)


def page_url(req, page):
    """The request's own URL with another page number (absolute, like GitHub's Link)."""
    query = [(k, v) for k, vs in req.query.items() for v in vs if k != "page"]
    query.append(("page", str(page)))
    return "%s%s?%s" % (req.base, req.path, urllib.parse.urlencode(query))


def link_header(req, page, last_page):
    """RFC 8288 Link with next/last/first/prev, or None on a single page."""
    if last_page <= 1:
        return None
    links = []
    if page < last_page:
        links.append('<%s>; rel="next"' % page_url(req, page + 1))
        links.append('<%s>; rel="last"' % page_url(req, last_page))
    if page > 1:
        links.append('<%s>; rel="first"' % page_url(req, 1))
        links.append('<%s>; rel="prev"' % page_url(req, page - 1))
    return ", ".join(links)


def paginate(req, items, default=30, maximum=100):
    """(slice, Link header or None) of a list for the request's page."""
    page, per_page = page_args(req, default, maximum)
    last_page = max((len(items) + per_page - 1) // per_page, 1)
    start = (page - 1) * per_page
    return items[start:start + per_page], link_header(req, page, last_page)
