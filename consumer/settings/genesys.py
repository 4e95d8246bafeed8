"""The ``genesys`` settings: the Genesys Cloud org the ``poll`` command reads. Plain data.

A section of :class:`consumer.settings.schema.Settings`; its URLs are checked here, alone.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec

from consumer.settings.secret import Secret
from consumer.settings.section import Positive, Section

_HOST: Final = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def _base_url(url: str, name: str) -> str:
    """``url`` without a trailing slash, checked to be an http(s) URL with a host."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if scheme not in ("http", "https") or not sep or not host:
        raise ValueError(f"genesys.{name} {url!r} must be an http:// or https:// URL")
    return url.rstrip("/")


class GenesysSettings(Section):
    """The Genesys Cloud org the ``poll`` command reads (see docs/genesys.md).

    ``client_id`` and ``client_secret`` also read ``GENESYS_CLIENT_ID`` and
    ``GENESYS_CLIENT_SECRET``. ``region`` (``mypurecloud.ie``) means the API base
    ``https://api.<region>``; ``api_base`` sets it directly (not both). The login base is
    the API base with ``api.`` replaced by ``login.`` unless ``login_base`` says otherwise;
    an API base whose host does not start with ``api.`` (a double on 127.0.0.1) logs in
    on itself.
    """

    client_id: str | None = None
    client_secret: Secret | None = None
    region: str | None = None
    api_base: str | None = None
    login_base: str | None = None
    # the campaigns to poll; none: every preview campaign on, stopping or forced_stopping
    campaigns: list[str] = []
    interval_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # the platform allows 300 requests a minute per client; stay under it
    requests_per_minute: Positive = 240
    # how often the campaigns (discovered, or their settings) are read again
    discovery_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # the source id heartbeats carry
    source_id: str = "genesys-poller"

    def __post_init__(self) -> None:
        if self.region is not None and self.api_base is not None:
            raise ValueError("genesys.region and genesys.api_base exclude each other")
        if self.region is not None and not _HOST.fullmatch(self.region):
            raise ValueError(
                f"genesys.region {self.region!r} must be a host name such as mypurecloud.ie"
            )
        if self.api_base is not None:
            self.api_base = _base_url(self.api_base, "api_base")
        if self.login_base is not None:
            self.login_base = _base_url(self.login_base, "login_base")

    @property
    def api_url(self) -> str | None:
        """The Platform API base URL, or ``None`` when neither region nor api_base is set."""
        if self.api_base is not None:
            return self.api_base
        return None if self.region is None else f"https://api.{self.region}"

    @property
    def login_url(self) -> str | None:
        """The OAuth base URL: ``login_base``, else the API base with ``api.`` -> ``login.``."""
        if self.login_base is not None:
            return self.login_base
        api = self.api_url
        if api is None:
            return None
        scheme, _, rest = api.partition("://")
        return f"{scheme}://login.{rest[4:]}" if rest.startswith("api.") else api
