"""Settings that validate but can never work or never match (docs/semantics.md §2, §3, §5 ``check``).

A configuration can be valid and still lie: a login without a password fails only when mail is sent, a
password over an unencrypted connection is always refused, a ``*`` keyword never matches. ``check`` reports
each with its location, as an **error** where it can never work and a **warning** where it may be
deliberate (a company the host's own directory may know, a wildcard inside a keyword). Shadowed routes
and mail loops are in :mod:`enate_routing._analysis`. :func:`find_token_file_problems` looks at the OAuth
refresh-token files on disk with the transports' own rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from enate_routing._loading import check_ca_files, check_client_certificate
from enate_routing._model import Config, Connector, RoutingRules
from enate_routing._paths import configured_path
from enate_routing._patterns import subject_words
from enate_routing._token_files import TokenFileProblem, read_token_file
from enate_routing.errors import CertificateError, ConfigIssue

__all__ = ["MAX_PASSWORD", "Finding", "Severity", "find_dead_settings", "find_token_file_problems"]

Severity = Literal["error", "warning"]
MAX_PASSWORD = 50
"""The longest password docs/semantics.md §2 allows, inline or by reference."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One dead setting: how bad, a short stable ``code`` for tools, and the located issue."""

    severity: Severity
    code: str
    issue: ConfigIssue

    def __str__(self) -> str:
        return str(self.issue)


def find_dead_settings(config: Config, *, environ: Mapping[str, str] | None = None) -> tuple[Finding, ...]:
    """Every dead setting of ``config``, connectors first, then routes, in file order.

    ``environ`` is where ``*_env`` references are read (default ``os.environ``); values are measured,
    never shown.
    """
    source = os.environ if environ is None else environ
    found: list[Finding] = []
    if not config.connectors:
        found.append(_error("empty", "the configuration has no connectors: it reads and routes no mail"))
    for connector in config.connectors:
        found.extend(_connector_findings(connector, source))
    for route in config.routes:
        found.extend(_rule_findings(route.rules, f"route {route.name!r} of connector {route.connector!r}", config))
    linking = config.linking
    acknowledging = any(r.send_automated_emails for r in (*config.routes, *config.fallbacks))
    if acknowledging and linking.subject_pattern and linking.reference_token() is None:
        # docs/semantics.md §3.4–§3.5: the acknowledgement is where a customer gets the token to reply with.
        found.append(_warning(
            "token-not-written", "subject_pattern does not find the [REF:...] form and no subject_token says how "
            "acknowledgements write a reference, so they carry none: replies link only through In-Reply-To "
            "and References; set subject_token to the form the pattern finds, with {ref} for the reference",
            where="[linking]", field="subject_token"))
    return tuple(found)


def find_token_file_problems(config: Config, *, base_dir: Path) -> tuple[Finding, ...]:
    """Refresh-token files (``oauth.token_file``, relative to ``base_dir``, the configuration file's folder)
    that exist but that the transports would refuse at first use, by the transports' own rule
    (:func:`enate_routing._token_files.read_token_file`).

    Errors: a file others may read (``token-file-exposed``), that is not a token file
    (``token-file-invalid``), or that was issued to another provider or OAuth client than the connector names
    (``token-file-mismatch``: the configuration changed after ``login``). A warning: a file this user may not
    read (``token-file-unreadable``; ``poll`` may run as another user). A file that does not exist yet is not
    reported: ``enate-routing login`` writes it after the configuration, and where ``check`` runs in CI there
    are no production secrets. The token is read into memory only to be tested, never shown.
    """
    found: list[Finding] = []
    for connector in config.connectors:
        oauth = connector.oauth
        if oauth is None or oauth.flow != "refresh-token" or oauth.token_file is None:
            continue
        path = configured_path(oauth.token_file, base_dir)
        try:
            read_token_file(path, provider=oauth.provider, client_id=oauth.client_id)
        except TokenFileProblem as problem:
            if problem.kind == "missing":
                continue
            make = _warning if problem.kind == "unreadable" else _error
            found.append(make(f"token-file-{problem.kind}", problem.reason, where=f"connector {connector.name!r}",
                              field="oauth.token_file", item=str(path)))
    return tuple(found)


def find_certificate_problems(config: Config, *, base_dir: Path,
                               environ: Mapping[str, str] | None = None) -> tuple[Finding, ...]:
    """Client certificates and CA files loading would refuse, as findings instead of a failed load.

    ``check`` may run where the production secrets are not (CI): a ``.pfx`` that is not there, or whose
    ``certificate_password_env`` is not set, cannot be checked, which is a warning (``certificate-unchecked``;
    ``poll`` refuses to start without it). Any other problem — an unreadable CA file, a wrong password, an
    expired certificate, no private key — is an error (``certificate-invalid``), in the words loading uses.
    """
    source = os.environ if environ is None else environ
    found: list[Finding] = []
    for connector in config.connectors:
        checks = [partial(check_ca_files, connector, base_dir=base_dir)]
        if connector.certificate is not None:
            path = configured_path(connector.certificate, base_dir)
            variable = connector.certificate_password_env
            absent = (f"the certificate file is not here ({path})" if not path.exists() else
                      f"its password variable {variable} is not set here" if variable and variable not in source
                      else None)
            if absent is None:
                checks.append(partial(check_client_certificate, connector, base_dir=base_dir, environ=environ))
            else:
                found.append(_warning("certificate-unchecked", f"{absent}: the certificate was not checked; "
                                      "`poll` checks it when it starts", where=f"connector {connector.name!r}",
                                      field="certificate", item=connector.certificate))
        for check in checks:
            try:
                check()
            except CertificateError as exc:
                found += [_error("certificate-invalid", issue.problem, where=issue.where, field=issue.field,
                                 item=issue.item) for issue in exc.issues]
    return tuple(found)


def _error(code: str, problem: str, *, where: str | None = None, field: str | None = None,
           item: str | None = None) -> Finding:
    return Finding("error", code, ConfigIssue(problem, where=where, field=field, item=item))


def _warning(code: str, problem: str, *, where: str | None = None, field: str | None = None,
             item: str | None = None) -> Finding:
    return Finding("warning", code, ConfigIssue(problem, where=where, field=field, item=item))


def _logins(connector: Connector) -> list[tuple[str, str, str]]:
    """(field, auth, security) of each server the connector uses."""
    used: list[tuple[str, str, str]] = []
    if connector.incoming is not None and connector.uses_incoming:
        used.append(("incoming", connector.incoming.auth, connector.incoming.security))
    if connector.outgoing is not None and connector.uses_outgoing:
        used.append(("outgoing", connector.outgoing.auth, connector.outgoing.security))
    return used


def _connector_findings(connector: Connector, environ: Mapping[str, str]) -> Iterator[Finding]:
    where = f"connector {connector.name!r}"
    logins = _logins(connector)
    has_password = connector.password is not None or connector.password_env is not None
    with_password = [field for field, auth, _ in logins if auth == "username-password"]
    if with_password and not has_password:
        yield _error("password-missing", f"the {' and '.join(with_password)} server logs in with username and "
                     "password, but no password is given (password or password_env); every login would fail",
                     where=where, field="password")
    for field, auth, security in logins:
        if security != "none":
            continue
        if auth == "certificate":
            yield _error("secret-in-clear", "a client certificate is presented only over TLS, so every "
                         "connection fails; use ssl or starttls", where=where, field=f"{field}.security",
                         item="none")
        elif (auth == "oauth2" or (auth == "username-password" and has_password)) \
                and not connector.allow_plaintext_auth:
            what = "an OAuth token" if auth == "oauth2" else "a password"
            yield _error("secret-in-clear", f"{what} is never sent over an unencrypted connection, so every "
                         "login fails (InsecureConnectionError); use ssl or starttls, or set "
                         "allow_plaintext_auth = true on a trusted network", where=where,
                         field=f"{field}.security", item="none")
    for env_field in ("password_env", "certificate_password_env"):
        name = getattr(connector, env_field)
        if name is None:
            continue
        # An unset variable is normal where check runs (CI has no production secrets): not reported.
        if name in environ and len(environ[name]) > MAX_PASSWORD:
            yield _error("secret-too-long", f"the value of this environment variable is {len(environ[name])} "
                         f"characters; a password has at most {MAX_PASSWORD}", where=where, field=env_field,
                         item=name)
    if connector.additional_access is not None and connector.additional_mailbox is None:
        yield _warning("additional-unused", "additional_access is set but no additional_mailbox is given, so it "
                       "is never used", where=where, field="additional_access", item=connector.additional_access)
    if connector.additional_mailbox is not None and not connector.uses_incoming:
        yield _warning("additional-unused", f"a connector used for {connector.use_for} reads no mailbox, so its "
                       "additional mailbox is never read", where=where, field="additional_mailbox")


def _rule_findings(rules: RoutingRules, where: str, config: Config) -> Iterator[Finding]:
    for extension in rules.attachment_types:
        if "*" in extension or "?" in extension:
            yield _error("wildcard-never-matches", "attachment types are compared as written, so a wildcard never "
                         "matches a file name; list the extensions instead", where=where,
                         field="rules.attachment_types", item=extension)
    for keyword in rules.subject_keywords:
        words = subject_words(keyword)
        if not words:
            hint = "; leave the rule out to match every subject" if "*" in keyword else ""
            yield _error("keyword-without-words", f"keywords are whole words and this one has no letter or digit, "
                         f"so it never matches{hint}", where=where, field="rules.subject_keywords", item=keyword)
        elif "*" in keyword or "?" in keyword:
            yield _warning("keyword-wildcard", f"a wildcard is not a word: this keyword matches the whole "
                           f"word{'s' if len(words) > 1 else ''} {' '.join(words)!r} only, not words starting with "
                           "it", where=where, field="rules.subject_keywords", item=keyword)
    known = {name.casefold() for name in config.companies}
    for company in rules.sender_companies:
        if company.casefold() not in known:
            yield _warning("company-unknown", "no [companies] entry has this name; the rule holds only if the "
                           "host's own company directory knows it", where=where, field="rules.sender_companies",
                           item=company)
