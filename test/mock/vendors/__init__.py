"""Vendor plug-ins of the mock API.

Every module in this package is a vendor, served under /<PREFIX>/.  Adding
a vendor = adding one file here; mock_api.py discovers it at start.  A
vendor module defines:

    PREFIX = "gitlab"                       path prefix (and vendor name)

    empty_world() -> dict                   the world before anything is loaded
    load_world(data: dict) -> dict          a world from JSON (validate/normalise)
    generate(params: dict) -> dict          a deterministic world from parameters
                                            (seed and sizes; used by tests and benchmarks)
    check_auth(world, req) -> bool          is the request's credential right?
    unauthorized(world, req) -> Response    what the vendor answers otherwise
    handle(world, req) -> Response          the routes; raise mock_api.NotFound for 404
    mutate(world, op: dict) -> dict|None    vendor-specific changes for tests (optional)
    common_headers(world, req) -> list      headers added to every response (optional,
                                            e.g. rate-limit headers)

Handlers run with the world locked and must not block.  Shared pieces
(Request, Response, json_response, NotFound, pagination with Link headers,
time parsing) are in vendors/common.py.
"""

import importlib
import pkgutil

REGISTRY = {}

for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("_") or _info.name == "common":
        continue
    _module = importlib.import_module(__name__ + "." + _info.name)
    REGISTRY[_module.PREFIX] = _module
