"""The organization's single sign-on settings (admin): the email domains it claims, and whether
its members must log in through SSO.

Claiming a domain is verified by the claimant: only an admin for whose email on that domain a
configured provider has vouched (`email_verified`, recorded when they logged in through SSO) can
claim it, a domain belongs to one organization at most, and public mail domains cannot be claimed.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from litestar import delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from gateway.auth.caller import CallerDep, TenantDb, require_role
from gateway.errors import ApiError
from gateway.routes.sso import ProviderOut, provider_list
from storage import sso

__all__ = ["claim_domain", "get_org_sso", "put_org_sso", "release_domain"]

_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Anyone can have an address there: claiming one would pull strangers into the organization.
PUBLIC_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com", "ymail.com",
    "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "mail.com",
    "yandex.com", "yandex.ru", "zoho.com", "fastmail.com", "hey.com", "qq.com", "163.com", "example.com",
})


class OrgSsoOut(msgspec.Struct):
    sso_required: bool
    domains: list[sso.ClaimedDomain]
    providers: list[ProviderOut]


class OrgSsoIn(msgspec.Struct):
    sso_required: bool


class DomainIn(msgspec.Struct):
    domain: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]


def _normalize(domain: str) -> str:
    """Raises:
        ApiError: 400 for something that is not a domain name, or a public mail domain.
    """
    value = domain.strip().lower().lstrip("@").rstrip(".")
    if not _DOMAIN.match(value):
        raise ApiError(400, "invalid_domain", "give a domain name such as acme.com", field="domain")
    if value in PUBLIC_MAIL_DOMAINS:
        raise ApiError(400, "public_domain", f"{value} is a public mail domain; claim your company's own domain",
                       field="domain")
    return value


async def _out(db: TenantDb, state: State, caller: CallerDep) -> OrgSsoOut:
    return OrgSsoOut(await sso.sso_required(db, caller.org_id), await sso.list_domains(db, caller.org_id),
                     provider_list(state))


@get("/api/orgs/sso", tags=["orgs"], summary="The org's single sign-on settings (admin)")
async def get_org_sso(caller: CallerDep, db: TenantDb, state: State) -> OrgSsoOut:
    require_role(caller, "admin")
    return await _out(db, state, caller)


@put("/api/orgs/sso", tags=["orgs"], summary="Require single sign-on for the org's members, or not (admin)")
async def put_org_sso(caller: CallerDep, db: TenantDb, state: State, data: JSONBody[OrgSsoIn]) -> OrgSsoOut:
    require_role(caller, "admin")
    if data.sso_required and not state.settings.oidc:
        raise ApiError(409, "no_sso_provider", "no single sign-on provider is configured here (OIDC_PROVIDERS): "
                       "requiring it would lock everyone out", field="sso_required")
    await sso.set_sso_required(db, caller.org_id, data.sso_required)
    return await _out(db, state, caller)


@post("/api/orgs/sso/domains", tags=["orgs"], status_code=201,
      summary="Claim an email domain: new SSO users from it join as trainees (admin with a verified email there)")
async def claim_domain(caller: CallerDep, db: TenantDb, state: State, data: JSONBody[DomainIn]) -> OrgSsoOut:
    require_role(caller, "admin")
    domain = _normalize(data.domain)
    if not await sso.has_verified_email_on(db, caller.user_id, domain):
        raise ApiError(403, "domain_not_verified", f"log in through single sign-on with your own {domain} email "
                       "first: only an admin whose address there a provider has verified can claim it",
                       field="domain")
    if not await sso.claim_domain(db, caller.org_id, domain, caller.user_id):
        raise ApiError(409, "domain_taken", f"{domain} is already claimed by another organization", field="domain")
    return await _out(db, state, caller)


@delete("/api/orgs/sso/domains/{domain:str}", tags=["orgs"], status_code=204,
        summary="Release a claimed email domain (admin)")
async def release_domain(caller: CallerDep, db: TenantDb, domain: FromPath[str]) -> None:
    require_role(caller, "admin")
    if not await sso.release_domain(db, caller.org_id, domain.strip().lower()[:253]):
        raise ApiError(404, "not_found", "your organization has not claimed this domain")
