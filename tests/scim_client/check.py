#!/usr/bin/env python3
"""A strict, independent SCIM 2.0 client check of one Roster directory.

    ROSTER_SCIM_URL=http://127.0.0.1:PORT/scim/v2/<directory id> \
    ROSTER_SCIM_TOKEN=<bearer token> python check.py

Built on python-scim's libraries (scim2-models, scim2-client, scim2-tester), which read every
payload with the RFC 7643/7644 models under the strict policy: an attribute no published schema
declares, a wrong type, a missing required attribute or an unexpected status code is an error.

1. Discovery, validated here: /ServiceProviderConfig, /Schemas and /Schemas/<each id>,
   /ResourceTypes and /ResourceTypes/<each id> (User and Group at least), each document the
   one its URL names (meta.location), each by-id document the same as its list entry, and
   every schema a resource type or the ServiceProviderConfig names published on /Schemas.
2. scim2-tester's whole checker (discovery, then create/read/list/attributes/replace/delete
   and PATCH add/remove/replace of every writable attribute, enterprise extension included,
   on every resource type the server publishes), plus its core-schemas check. What the
   server does not support is skipped from what its ServiceProviderConfig says, never here.
3. GET /Schemas/nope and /ResourceTypes/Nope answer a SCIM 404 error.

Every check prints one line (PASS, SKIP, FAIL); the exit status is 0 only when none failed (1
otherwise, 2 on a usage error). A scim2-tester result fails when its status is anything but
SUCCESS/COMPLIANT/ACCEPTABLE/SKIPPED (SKIPPED: what the server says it does not do, e.g. PATCH
off in its ServiceProviderConfig, or 501 on a root POST /.search), with one exception, printed PASS*: a PATCH add/replace check whose sent and read-back
values differ only in readOnly sub-attributes (per the published schema) that the client left
unset and the server assigned, e.g. a group member's `display` (RFC 7643 §7 lets the server set
them; scim2-tester 0.5.2 compares them too). Any other difference is a failure.

One more liberty taken with the libraries: scim2-client reads /ServiceProviderConfig with the
bare RFC model, so an extension of it (Roster's limits) would be an "extra input" even when
its schema is published. Here the ServiceProviderConfig model carries the extensions that the
document lists in `schemas` AND that /Schemas publishes, built from those published schemas;
any other key is still refused.
"""

from __future__ import annotations

import operator
import os
import sys
import traceback
from functools import reduce
from typing import Any
from urllib.parse import unquote

import httpx2
from scim2_client import SCIMClientException
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import BaseModel
from scim2_models import Error
from scim2_models import Extension
from scim2_models import Mutability
from scim2_models import ResourceType
from scim2_models import Schema
from scim2_models import SCIMException
from scim2_models import ServiceProviderConfig
from scim2_tester import CheckConfig
from scim2_tester import Status
from scim2_tester import check_server
from scim2_tester.checkers import core_schemas_validation
from scim2_tester.utils import CheckContext

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Statuses that pass (scim2-tester: SUCCESS/COMPLIANT/ACCEPTABLE; SKIPPED is reported as such).
PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}

failures: list[str] = []


def line(verdict: str, where: str, message: str) -> None:
    print(f"{verdict:<5} {where}: {message}", flush=True)


def ok(where: str, message: str) -> None:
    line("PASS", where, message)


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")
    line("FAIL", where, message)


def describe(exc: BaseException) -> str:
    """An exception as the libraries word it, with its notes (pydantic's details) and cause."""
    parts = [str(exc) or type(exc).__name__, *(getattr(exc, "__notes__", None) or [])]
    cause = exc.__cause__
    if cause is not None and not any(str(cause) in part for part in parts):
        parts.append(f"caused by: {cause}")
    text = "\n".join(parts).replace("\n", "\n        ")
    source = getattr(exc, "source", None)
    if source is not None and hasattr(source, "status_code"):
        body = getattr(source, "text", "") or ""
        text += f"\n        HTTP {source.status_code}: {body[:400]}"
    return text


def short(value: Any, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " …"


class StrictClient(SyncSCIMClient):
    """scim2-client's httpx2 client, reading /ServiceProviderConfig with the published
    extensions it declares (see the module's doc); everything else is the library's."""

    spc_model: type[ServiceProviderConfig] = ServiceProviderConfig

    def check_response(self, *args: Any, **kwargs: Any) -> Any:
        expected = kwargs.get("expected_types")
        if expected is not None and list(expected) == [ServiceProviderConfig]:
            kwargs["expected_types"] = [self.spc_model]
        return super().check_response(*args, **kwargs)


def new_client(base_url: str, token: str, spc_model: type[ServiceProviderConfig]) -> StrictClient:
    http = httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
        timeout=60,
    )
    client = StrictClient(http)
    client.spc_model = spc_model
    return client


def check_location(where: str, resource: Any, url: str, resource_type: str) -> None:
    meta = getattr(resource, "meta", None)
    if meta is None:
        fail(where, "no `meta` (RFC 7643 §3.1: meta.resourceType and meta.location)")
        return
    if meta.resource_type != resource_type:
        fail(where, f"meta.resourceType is {meta.resource_type!r}, expected {resource_type!r}")
    if meta.location is None or unquote(meta.location) != unquote(url):
        fail(where, f"meta.location is {meta.location!r}, expected {url!r}")


# ---- 1. Discovery -------------------------------------------------------------------------


def discovery(base_url: str, token: str) -> type[ServiceProviderConfig]:
    """Validates the discovery documents; returns the ServiceProviderConfig model to read
    the configuration with (the core model plus its published, declared extensions)."""
    print("\n== 1. discovery documents, strictly validated ==", flush=True)
    client = new_client(base_url, token, ServiceProviderConfig)

    # /Schemas first: it says which extension schemas exist.
    published: dict[str, Schema] = {}
    try:
        listed = client.query(Schema, expected_status_codes=[200])
        for schema in listed.resources or []:
            published[str(schema.id)] = schema
        ok("GET /Schemas", f"{len(published)} schemas: {', '.join(published)}")
    except (SCIMClientException, SCIMException) as exc:
        fail("GET /Schemas", describe(exc))

    for needed in (USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA, SPC_SCHEMA,
                   "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
                   "urn:ietf:params:scim:schemas:core:2.0:Schema"):
        if published and needed not in published:
            fail("GET /Schemas", f"does not publish {needed}")

    for schema_id, schema in published.items():
        where = f"GET /Schemas/{schema_id}"
        before = len(failures)
        try:
            one = client.query(Schema, schema_id, expected_status_codes=[200])
        except (SCIMClientException, SCIMException) as exc:
            fail(where, describe(exc))
            continue
        if str(one.id) != schema_id:
            fail(where, f"answered the schema {one.id!r}")
            continue
        if one.model_dump() != schema.model_dump():
            fail(where, "differs from its entry in GET /Schemas")
        check_location(where, one, f"{base_url}/Schemas/{schema_id}", "Schema")
        if len(failures) == before:
            ok(where, f"{len(one.attributes or [])} attributes")

    # /ServiceProviderConfig, with the extensions it declares and /Schemas publishes.
    spc_model: type[ServiceProviderConfig] = ServiceProviderConfig
    where = "GET /ServiceProviderConfig"
    before = len(failures)
    try:
        raw = client.request("GET", "/ServiceProviderConfig")
        declared = raw.json().get("schemas", []) if raw.status_code == 200 else []
    except Exception as exc:  # the strict query below reports what is wrong
        declared = []
        line("NOTE", where, f"could not read it raw: {exc}")
    extensions = []
    for urn in declared:
        if urn == SPC_SCHEMA or not isinstance(urn, str):
            continue
        if urn not in published:
            fail(where, f"lists the schema {urn} in `schemas`, which /Schemas does not publish")
            continue
        try:
            extensions.append(Extension.from_schema(published[urn]))
        except Exception as exc:
            fail(where, f"the published schema {urn} cannot be built into a model: {exc}")
    if extensions:
        spc_model = ServiceProviderConfig[reduce(operator.or_, extensions)]  # type: ignore[misc]
    client.spc_model = spc_model
    try:
        spc = client.query(ServiceProviderConfig, expected_status_codes=[200])
        check_location(where, spc, f"{base_url}/ServiceProviderConfig", "ServiceProviderConfig")
        ext_note = f" with extension(s) {', '.join(str(e.__schema__) for e in extensions)}" if extensions else ""
        if len(failures) == before:
            ok(where, f"valid{ext_note}: patch={spc.patch.supported} bulk={spc.bulk.supported} "
                      f"filter={spc.filter.supported} sort={spc.sort.supported} "
                      f"etag={spc.etag.supported} changePassword={spc.change_password.supported}")
    except (SCIMClientException, SCIMException) as exc:
        fail(where, describe(exc))

    # /ResourceTypes and each one by id.
    types: dict[str, ResourceType] = {}
    try:
        listed = client.query(ResourceType, expected_status_codes=[200])
        for rt in listed.resources or []:
            types[str(rt.id)] = rt
        ok("GET /ResourceTypes", f"{len(types)} resource types: {', '.join(types)}")
    except (SCIMClientException, SCIMException) as exc:
        fail("GET /ResourceTypes", describe(exc))

    for rt_id in dict.fromkeys(["User", "Group", *types]):
        where = f"GET /ResourceTypes/{rt_id}"
        before = len(failures)
        try:
            one = client.query(ResourceType, rt_id, expected_status_codes=[200])
        except (SCIMClientException, SCIMException) as exc:
            fail(where, describe(exc))
            continue
        if str(one.id) != rt_id:
            fail(where, f"answered the resource type {one.id!r}")
            continue
        if rt_id in types and one.model_dump() != types[rt_id].model_dump():
            fail(where, "differs from its entry in GET /ResourceTypes")
        elif types and rt_id not in types:
            fail(where, "answers, but GET /ResourceTypes does not list it")
        check_location(where, one, f"{base_url}/ResourceTypes/{rt_id}", "ResourceType")
        named = [str(one.schema_)] + [str(e.schema_) for e in one.schema_extensions or []]
        for urn in named:
            if published and urn not in published:
                fail(where, f"names the schema {urn}, which /Schemas does not publish")
        if rt_id == "User" and ENTERPRISE_SCHEMA not in named:
            fail(where, f"does not declare the extension {ENTERPRISE_SCHEMA}")
        if len(failures) == before:
            ok(where, f"endpoint {one.endpoint}, schemas {', '.join(named)}")

    return spc_model


# ---- 2. scim2-tester ----------------------------------------------------------------------

# The PATCH checks compare the value sent with the value read back, all of it: a readOnly
# sub-attribute the client never sent but the server assigns (a group member's `display`) makes
# them fail although RFC 7643 §7 lets the server set it. Such a result, and only such a one, is
# re-judged: every difference must be a readOnly (sub-)attribute, per the published schema, left
# unset in what was sent. Any other difference stays a failure.
REJUDGED = {"check_add_attribute", "check_replace_attribute"}


def server_assigned(sent: Any, got: Any, path: str) -> list[str] | None:
    """The readOnly paths only `got` sets, or None when the two differ otherwise."""
    if isinstance(sent, BaseModel) and isinstance(got, BaseModel) and type(sent) is type(got):
        assigned: list[str] = []
        for field, info in type(sent).model_fields.items():
            a, b = getattr(sent, field), getattr(got, field)
            name = f"{path}.{info.serialization_alias or field}".lstrip(".")
            if a is None and b is not None and \
                    type(sent).get_field_annotation(field, Mutability) == Mutability.read_only:
                assigned.append(name)
                continue
            sub = server_assigned(a, b, name)
            if sub is None:
                return None
            assigned += sub
        return assigned
    if isinstance(sent, list) and isinstance(got, list):
        if len(sent) != len(got):
            return None
        assigned = []
        for a, b in zip(sent, got):
            sub = server_assigned(a, b, path)
            if sub is None:
                return None
            assigned += [x for x in sub if x not in assigned]
        return assigned
    return [] if sent == got else None


def rejudge(result: Any) -> list[str] | None:
    data = result.data
    if result.title not in REJUDGED or result.status != Status.ERROR or not isinstance(data, dict):
        return None
    got = data.get("modify_actual", data.get("actual"))
    if "expected" not in data or got is None:
        return None
    assigned = server_assigned(data["expected"], got, str(data.get("urn", "")))
    return assigned or None



def tester(base_url: str, token: str, spc_model: type[ServiceProviderConfig]) -> None:
    print("\n== 2. scim2-tester: discovery, CRUD, PATCH on every resource type ==", flush=True)
    client = new_client(base_url, token, spc_model)
    results = check_server(client)

    # Not part of check_server in this version; the core schemas must be published too.
    results += core_schemas_validation(CheckContext(client, CheckConfig()))

    counts: dict[str, int] = {}
    for result in results:
        assigned = rejudge(result)
        kind = "ERROR re-judged PASS*" if assigned else result.status.name
        counts[kind] = counts.get(kind, 0) + 1
        where = f"{result.resource_type + ' ' if result.resource_type else ''}{result.title}"
        reason = (result.reason or "").replace("\n", " | ")
        if result.status in PASSING:
            line("PASS", where, reason)
        elif assigned:
            line("PASS*", where, f"differs only in the server-assigned readOnly "
                                 f"{', '.join(assigned)} (scim2-tester: {reason})")
        elif result.status == Status.SKIPPED:
            line("SKIP", where, reason)
        else:
            message = f"[{result.status.name}] {reason}"
            if result.data is not None:
                message += f"\n        data: {short(result.data)}"
            fail(where, message)
    print("   scim2-tester: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), flush=True)
    if not any(r.status in PASSING for r in results if r.resource_type):
        fail("scim2-tester", "no CRUD check ran (discovery failed, so the checker stopped)")


# ---- 3. Unknown discovery ids -------------------------------------------------------------


def unknown_ids(base_url: str, token: str) -> None:
    print("\n== 3. unknown discovery ids answer a SCIM 404 ==", flush=True)
    client = new_client(base_url, token, ServiceProviderConfig)
    for model, unknown, path in ((Schema, "nope", "/Schemas/nope"),
                                 (ResourceType, "Nope", "/ResourceTypes/Nope")):
        where = f"GET {path}"
        try:
            answer = client.query(model, unknown, expected_status_codes=[404],
                                  raise_scim_errors=False)
        except (SCIMClientException, SCIMException) as exc:
            fail(where, describe(exc))
            continue
        if not isinstance(answer, Error):
            fail(where, f"answered a {type(answer).__name__}, not a SCIM Error: {short(answer)}")
        elif answer.status != 404:
            fail(where, f"the Error's status is {answer.status!r}, not 404")
        else:
            ok(where, f"404 {answer.detail or ''}".strip())


def main() -> int:
    base_url = os.environ.get("ROSTER_SCIM_URL", "").rstrip("/")
    token = os.environ.get("ROSTER_SCIM_TOKEN", "")
    if not base_url or not token:
        print("usage: ROSTER_SCIM_URL=… ROSTER_SCIM_TOKEN=… python check.py", file=sys.stderr)
        return 2
    print(f"SCIM endpoint {base_url}", flush=True)

    spc_model: type[ServiceProviderConfig] = ServiceProviderConfig
    try:
        spc_model = discovery(base_url, token)
    except Exception:
        fail("discovery", "crashed:\n" + traceback.format_exc())
    for part in (lambda: tester(base_url, token, spc_model), lambda: unknown_ids(base_url, token)):
        try:
            part()
        except Exception:
            fail("check", "crashed:\n" + traceback.format_exc())

    print()
    if failures:
        print(f"SCIM client check FAILED: {len(failures)} failure(s):")
        for f in failures:
            first = f.splitlines()[0]
            print(f"  - {first if len(first) <= 300 else first[:300] + ' …'}")
        return 1
    print("SCIM client check passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
