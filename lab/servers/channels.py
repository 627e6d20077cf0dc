"""The account's signaling channels: what CreateSignalingChannel makes and the WebSocket
side serves.

A channel is named per account and region and identified by its ARN,
`arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<creation epoch ms>`. The run's
own channel is added with the ARN the lab gives its peers. Creation is immediate: the
service reports CREATING for a moment, the lab goes straight to ACTIVE, so a client
never has to wait for it.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.core.documents import JsonObject
from lab.servers.service_model import ServiceError

ACCOUNT_ID = "123456789012"
DEFAULT_MESSAGE_TTL_S = 60
# The service limits active channels per account and region
# (AccountChannelLimitExceededException); the lab's limit keeps a runaway script from
# filling the server's memory.
MAX_CHANNELS = 10000
NOT_FOUND = "The requested channel is not found or not active."
_VERSION_ALPHABET = string.ascii_letters + string.digits
# A client id: 1-256 of [a-zA-Z0-9_.-], not starting with AWS_ (the service's pattern is
# `^(?!(?i)AWS_.*)`, so the prefix check ignores case).
CLIENT_ID = re.compile(r"[a-zA-Z0-9_.-]{1,256}")
RESERVED_CLIENT_ID_PREFIX = "aws_"


def valid_client_id(client_id: str) -> bool:
    """The service's rule for a viewer's client id (X-Amz-ClientId, GetIceServerConfig)."""
    return bool(CLIENT_ID.fullmatch(client_id)) and not client_id.lower().startswith(
        RESERVED_CLIENT_ID_PREFIX
    )


def channel_arn(region: str, account: str, name: str, created_ms: int) -> str:
    return f"arn:aws:kinesisvideo:{region}:{account}:channel/{name}/{created_ms}"


def _new_version() -> str:
    return "".join(secrets.choice(_VERSION_ALPHABET) for _ in range(20))


@dataclass
class ChannelRecord:
    """One signaling channel as the control plane describes it."""

    name: str
    arn: str
    message_ttl_s: float
    creation_time: float
    version: str = field(default_factory=_new_version)
    channel_type: str = "SINGLE_MASTER"
    status: str = "ACTIVE"
    tags: dict[str, str] = field(default_factory=dict)

    def info(self) -> JsonObject:
        """The ChannelInfo shape of DescribeSignalingChannel and ListSignalingChannels."""
        return {
            "ChannelName": self.name,
            "ChannelARN": self.arn,
            "ChannelType": self.channel_type,
            "ChannelStatus": self.status,
            "CreationTime": self.creation_time,  # rest-json: epoch seconds
            "SingleMasterConfiguration": {"MessageTtlSeconds": round(self.message_ttl_s)},
            "Version": self.version,
        }


class ChannelRegistry:
    """The channels of the run's account in its region, by ARN."""

    def __init__(
        self,
        region: str,
        account: str = ACCOUNT_ID,
        *,
        limit: int = MAX_CHANNELS,
        clock: Callable[[], float] = time.time,
        on_delete: Callable[[ChannelRecord], None] | None = None,
    ) -> None:
        self.region = region
        self.account = account
        self.limit = limit
        self.clock = clock
        self.on_delete = on_delete
        self._by_arn: dict[str, ChannelRecord] = {}

    def __contains__(self, arn: object) -> bool:
        return arn in self._by_arn

    def __len__(self) -> int:
        return len(self._by_arn)

    def add(self, arn: str, message_ttl_s: float = DEFAULT_MESSAGE_TTL_S) -> ChannelRecord:
        """Add a channel whose ARN is already chosen (the run's own)."""
        record = ChannelRecord(arn.split("/")[1], arn, message_ttl_s, self.clock())
        self._by_arn[arn] = record
        return record

    def create(
        self,
        name: str,
        message_ttl_s: float = DEFAULT_MESSAGE_TTL_S,
        tags: dict[str, str] | None = None,
    ) -> ChannelRecord:
        """A new channel; ResourceInUseException if the name is taken."""
        if self.by_name(name) is not None:
            raise ServiceError("ResourceInUseException", f"The channel {name} already exists.")
        if len(self._by_arn) >= self.limit:
            raise ServiceError(
                "AccountChannelLimitExceededException",
                f"The account already has {self.limit} signaling channels in {self.region}.",
            )
        now = self.clock()
        arn = channel_arn(self.region, self.account, name, int(now * 1000))
        record = ChannelRecord(name, arn, message_ttl_s, now, tags=dict(tags or {}))
        self._by_arn[arn] = record
        return record

    def by_arn(self, arn: str) -> ChannelRecord | None:
        return self._by_arn.get(arn)

    def by_name(self, name: str) -> ChannelRecord | None:
        return next((r for r in self._by_arn.values() if r.name == name), None)

    def find(self, *, name: str | None = None, arn: str | None = None) -> ChannelRecord:
        """The channel with this ARN (or name); ResourceNotFoundException if none."""
        record = self.by_arn(arn) if arn is not None else self.by_name(name or "")
        if record is None or (name is not None and record.name != name):
            raise ServiceError("ResourceNotFoundException", NOT_FOUND)
        return record

    def listing(self, prefix: str = "") -> list[ChannelRecord]:
        """Every channel whose name begins with `prefix`, by name (a stable paging order)."""
        return sorted(
            (r for r in self._by_arn.values() if r.name.startswith(prefix)), key=lambda r: r.name
        )

    def delete(self, arn: str, version: str | None = None) -> ChannelRecord:
        """Remove a channel (its clients are told to go away); VersionMismatchException if
        `version` is not the current one."""
        record = self.find(arn=arn)
        if version is not None and version != record.version:
            raise ServiceError(
                "VersionMismatchException",
                f"The version {version} is not the latest version of the channel "
                f"({record.version}).",
            )
        del self._by_arn[arn]
        if self.on_delete is not None:
            self.on_delete(record)
        return record
