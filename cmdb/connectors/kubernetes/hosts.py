"""Endpoint hostnames named in configuration text, without the secrets around them.

Workload env values and ConfigMap data are read only in memory, to learn which
endpoints (database, cache, search, other services) a workload talks to; what
is kept is ``host`` or ``host:port``, never the value itself:

- values under a name that looks like a secret (``PASSWORD``, ``SECRET``,
  ``TOKEN``, ``KEY``, ``CREDENTIAL``, ...) are not looked at at all;
- ``user:password@`` is cut from URLs and DSNs before anything is matched;
- only things shaped like hostnames (two or more DNS labels ending in a
  letter label), IPv4 addresses or, for a whole value under a host-like name,
  a single-label service name are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

__all__ = ["HostRef", "host_references", "is_secret_name", "split_host_port"]

HostRef = tuple[str, str]
"""(host or host:port, where it was named)."""

_SECRET_NAME = re.compile(
    r"PASS(WORD|WD|PHRASE)?|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|CERT|AUTH|SALT|SIGNATURE", re.IGNORECASE
)
_HOST_NAME = re.compile(r"(HOST|ADDR|ADDRESS|ENDPOINT|SERVER|SERVICE|URL|URI|DSN)S?$", re.IGNORECASE)
# user:password@ (or user@) in front of a host, in URLs and bare DSNs
# key=value or key: value pairs inside a value (DSNs, YAML, query strings) whose key is a secret's
_PAIR = re.compile(r"[\"']?([A-Za-z_][\w.-]*)[\"']?\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s;,&]+)")
_USERINFO = re.compile(r"(?<![\w.-])[^\s/@'\"=;,]+@(?=[\w\[])")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://([^/\s?#'\",;]+)", re.IGNORECASE)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOTTED = re.compile(
    rf"(?<![\w.@/-])((?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?)(?::(\d{{2,5}}))?(?![\w-]|\.\w)", re.IGNORECASE
)
_IPV4 = re.compile(
    r"(?<![\w.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?::(\d{2,5}))?(?![\w.])"
)
_WHOLE = re.compile(rf"^\s*({_LABEL})(?::(\d{{2,5}}))?\s*$", re.IGNORECASE)
# dotted words that are file names, Java packages or settings, not hosts
_NOT_TLDS = frozenset(
    {
        "yaml", "yml", "json", "xml", "properties", "conf", "cfg", "ini", "toml", "env", "jar", "war",
        "py", "sh", "js", "ts", "css", "html", "htm", "txt", "log", "pem", "crt", "key", "csv", "sql",
        "arpa", "level", "enabled", "size", "port", "name", "timeout", "max", "min", "class", "lang", "util",
    }
)  # fmt: skip


_NOT_HOSTS = frozenset({"cluster.local", "svc.cluster.local"})


def is_secret_name(name: str) -> bool:
    """True when a variable or key name looks like it holds a secret."""
    return bool(_SECRET_NAME.search(name))


def split_host_port(ref: str) -> tuple[str, str]:
    host, sep, port = ref.rpartition(":")
    if sep and port.isdigit() and host:
        return host, port
    return ref, ""


def _ref(host: str, port: str | None) -> str:
    host = host.lower().rstrip(".")
    return f"{host}:{port}" if port else host


def _without_secrets(text: str) -> str:
    text = _PAIR.sub(lambda m: "" if is_secret_name(m.group(1)) else m.group(0), text)
    return _USERINFO.sub("", text)


def _hosts_in(text: str, whole_host_ok: bool) -> Iterator[str]:
    text = _without_secrets(text)
    for match in _URL.finditer(text):
        authority = match.group(1).rpartition("@")[2]
        if authority.startswith("["):  # an IPv6 literal: not matched against anything
            continue
        host, _, port = authority.partition(":")
        if host and re.fullmatch(rf"(?:{_LABEL}\.)*{_LABEL}", host, re.IGNORECASE):
            yield _ref(host, port if port.isdigit() else None)
    for match in _DOTTED.finditer(text):
        host = match.group(1)
        if host.rsplit(".", 1)[1].lower() in _NOT_TLDS or host.lower() in _NOT_HOSTS:
            continue
        yield _ref(host, match.group(2))
    for match in _IPV4.finditer(text):
        yield _ref(match.group(1), match.group(2))
    if whole_host_ok:
        whole = _WHOLE.match(text)
        if whole and not whole.group(1).isdigit():
            yield _ref(whole.group(1), whole.group(2))


def host_references(name: str, value: str) -> list[str]:
    """The hosts (``host`` or ``host:port``) that ``value``, set under ``name``, names.

    Nothing is returned for a secret-looking ``name``.
    """
    if not value or is_secret_name(name):
        return []
    return list(dict.fromkeys(_hosts_in(value, bool(_HOST_NAME.search(name)))))


def merge_refs(refs: Iterable[HostRef]) -> dict[str, str]:
    """host -> the first place it was named, in a stable order."""
    merged: dict[str, str] = {}
    for host, where in refs:
        merged.setdefault(host, where)
    return dict(sorted(merged.items()))
