"""Local dev stack: a real single-node Kafka (KRaft, jars from Maven Central) and a real
Redis, as plain child processes (no Docker), each findable via a pid file and stoppable.

    stack = DevStack.from_settings(load_settings())
    report = stack.up()      # idempotent; StackReport with timings
    stack.status()           # {"kafka": {...}, "redis": {...}}
    stack.down()
"""

from leadflow.devstack.base import ManagedProcess, ProcessStatus
from leadflow.devstack.exceptions import (
    DevStackError,
    JarFetchError,
    NotReadyError,
    PortInUseError,
    ProcessExitedError,
    ToolMissingError,
)
from leadflow.devstack.kafka import KafkaServer
from leadflow.devstack.redis import RedisServer
from leadflow.devstack.stack import DevStack, StackReport

__all__ = [
    "DevStack",
    "DevStackError",
    "JarFetchError",
    "KafkaServer",
    "ManagedProcess",
    "NotReadyError",
    "PortInUseError",
    "ProcessExitedError",
    "ProcessStatus",
    "RedisServer",
    "StackReport",
    "ToolMissingError",
]
