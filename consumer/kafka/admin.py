"""Topic administration: creating the topics that do not exist yet, sized and checked."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from consumer.errors import BrokerError
from consumer.kafka.connection import diagnose
from consumer.kafka.options import client_options
from consumer.observe.logs import fields
from consumer.settings.schema import ConfigError, KafkaSettings

log = logging.getLogger(__name__)


async def ensure_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    partitions: int,
    *,
    compact: bool = False,
    partitions_like: str | None = None,
    setting: str = "",
) -> None:
    """Create the topics that do not exist yet (the daemon's outputs, the simulator's topic).

    ``partitions_like`` sizes them like another topic (a changelog must match its input
    partition for partition), and checks that those already there do: one that does not
    is a :class:`~consumer.settings.schema.ConfigError` naming ``setting`` (a group reused for
    another topic, say). ``compact`` makes them compacted. The other topic is never
    described before it exists: a broker that creates topics on first mention would
    create it with its default partition count, racing its real producer.
    """
    names = list(names)
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if partitions_like is not None:
            if partitions_like not in existing:
                raise BrokerError(f"topic {partitions_like} does not exist (yet)")
            present = [name for name in names if name in existing]
            counts = {
                t["topic"]: len(t["partitions"])
                for t in await admin.describe_topics([partitions_like, *present])
            }
            partitions = counts[partitions_like]
            for name in present:
                if counts[name] != partitions:
                    raise ConfigError(
                        f"{setting}: topic {name} has {counts[name]} partition(s) but "
                        f"{partitions_like} has {partitions}: they must match partition for "
                        "partition; give this topic a kafka.group_id of its own"
                    )
        if missing:
            # three copies where the cluster has three brokers; a one-broker cluster gets one
            brokers = len((await admin.describe_cluster())["brokers"])
            replicas = min(3, max(1, brokers))
            configs = {"cleanup.policy": "compact"} if compact else {}
            await admin.create_topics(
                [NewTopic(name, partitions, replicas, topic_configs=configs) for name in missing]
            )
            log.info(
                "topics_created",
                extra=fields(
                    topics=missing, partitions=partitions, replicas=replicas, compact=compact
                ),
            )
    except TopicAlreadyExistsError:
        pass  # another instance created it first
    except (KafkaError, OSError) as exc:
        raise await diagnose(settings, exc, "creating topics") from exc
    finally:
        await admin.close()
