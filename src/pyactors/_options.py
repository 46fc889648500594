"""Validation of the options of remote(), method() and .options(): runs once per decoration
or .options() call, so that bad input fails in the caller with a message naming the fix."""

from __future__ import annotations

import numbers
import sys
from typing import Any

DEFAULT_GROUP = "default"
ASYNC_DEFAULT_MAX_CONCURRENCY = 1000
THREADED_DEFAULT_MAX_CONCURRENCY = 1

# Ray options that place or retry work across a cluster. They are accepted so that Ray code
# runs unchanged, and have no effect in one process.
IGNORED_TASK_OPTIONS = frozenset(
    {
        "name",
        "num_cpus",
        "num_gpus",
        "resources",
        "memory",
        "accelerator_type",
        "max_calls",
        "max_retries",
        "max_task_retries",
        "retry_exceptions",
        "scheduling_strategy",
        "placement_group",
        "placement_group_bundle_index",
        "placement_group_capture_child_tasks",
        "runtime_env",
        "enable_task_events",
        "label_selector",
        "_metadata",
    }
)
IGNORED_ACTOR_OPTIONS = frozenset(
    {
        "num_cpus",
        "num_gpus",
        "resources",
        "memory",
        "accelerator_type",
        "scheduling_strategy",
        "placement_group",
        "placement_group_bundle_index",
        "placement_group_capture_child_tasks",
        "runtime_env",
        "lifetime",
        "namespace",
        "enable_task_events",
        "label_selector",
        "_metadata",
    }
)
IGNORED_INIT_OPTIONS = frozenset(
    {  # the rest of Ray 2.60's init(), hidden options included
        "namespace",
        "runtime_env",
        "num_gpus",
        "resources",
        "labels",
        "object_store_memory",
        "local_mode",
        "include_dashboard",
        "dashboard_host",
        "dashboard_port",
        "job_config",
        "configure_logging",
        "logging_level",
        "logging_format",
        "logging_config",
        "log_to_driver",
        "enable_resource_isolation",
        "cgroup_path",
        "system_reserved_cpu",
        "system_reserved_memory",
        "proxy_server_url",
        "_system_config",
        "_temp_dir",
        "_metrics_export_port",
        "_plasma_directory",
        "_object_spilling_directory",
        "_node_ip_address",
        "_node_name",
        "_driver_object_store_memory",
        "_memory",
        "_redis_username",
        "_redis_password",
        "_enable_object_reconstruction",
        "_tracing_startup_hook",
        "_skip_env_hook",
    }
)
ACTOR_DECORATOR_OPTIONS = frozenset(
    {
        "max_concurrency",
        "concurrency_groups",
        "max_pending_calls",
        "max_restarts",
        "max_task_retries",
        "process",
    }
)
ACTOR_CREATION_OPTIONS = ACTOR_DECORATOR_OPTIONS | {"name", "get_if_exists"}


def require_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, got {type(value).__name__} {value!r}")
    return value


def positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be a positive int (at least 1), got {value!r}")
    if value > sys.maxsize:
        raise ValueError(f"{what} must be at most {sys.maxsize} (sys.maxsize), got {value!r}")
    return value


def is_real(value: Any) -> bool:
    """A real number, bools aside: numpy scalars, Fraction and Decimal (which numbers.Real
    does not cover) included."""
    decimal = sys.modules.get("decimal")  # a Decimal exists only once decimal is imported
    return not isinstance(value, bool) and (
        isinstance(value, numbers.Real)
        or (decimal is not None and isinstance(value, decimal.Decimal))
    )


def positive_seconds(value: Any, what: str) -> float:
    """A positive real number of seconds."""
    if not is_real(value):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__} {value!r}")
    if not value > 0:
        raise ValueError(f"{what} must be more than 0 seconds, got {value!r}")
    return float(value)


def count_or_forever(value: Any, what: str) -> int:
    """Ray's counts of restarts and retries: an int >= 0, or -1 for no end."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{what} must be an int >= 0 (or -1: without end), got {type(value).__name__} {value!r}"
        )
    if value < -1 or value > sys.maxsize:
        raise ValueError(f"{what} must be an int >= 0 (or -1: without end), got {value!r}")
    return value


def actor_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a non-empty str, got {type(name).__name__} {name!r}")
    if not name:
        raise ValueError(f"{what} must be a non-empty str, got ''")
    return name


def num_returns(value: Any, where: str) -> int:
    """Ray's num_returns: how many refs a call returns (an int >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{where}: num_returns must be an int >= 0, got {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ValueError(f"{where}(num_returns={value!r}): num_returns must be >= 0")
    if value > sys.maxsize:
        raise ValueError(
            f"{where}(num_returns={value!r}): num_returns must be at most {sys.maxsize}"
        )
    return value


def group_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"{what}: a concurrency group name must be a str, got {type(name).__name__} {name!r}"
        )
    if not name:
        raise ValueError(f"{what}: a concurrency group name must be a non-empty str, got ''")
    return name


def concurrency_groups(groups: Any) -> dict[str, int]:
    if not isinstance(groups, dict):
        raise TypeError(
            f"concurrency_groups must be a dict of group name -> max concurrency, "
            f"got {type(groups).__name__} {groups!r}"
        )
    checked = {}
    for name, limit in groups.items():
        group_name(name, "concurrency_groups")
        if name == DEFAULT_GROUP:
            raise ValueError(
                f"concurrency_groups: {DEFAULT_GROUP!r} is a reserved group name: rename the "
                f"group, and set the default group's limit with max_concurrency="
            )
        checked[name] = positive_int(limit, f"concurrency_groups[{name!r}]")
    return checked


def actor_options(options: dict[str, Any], allowed: frozenset[str], where: str) -> dict[str, Any]:
    """Validated actor options: known keys checked, Ray-only keys kept as given (the Ray
    backend passes them on; in one process nothing reads them)."""
    unknown = set(options) - allowed - IGNORED_ACTOR_OPTIONS
    if unknown:
        raise TypeError(
            f"{where} got unsupported option(s) {sorted(unknown)}; supported: "
            f"{sorted(allowed)}, and Ray's placement options {sorted(IGNORED_ACTOR_OPTIONS)} "
            f"(accepted, no effect in one process)"
        )
    checked = {key: value for key, value in options.items() if key in IGNORED_ACTOR_OPTIONS}
    if options.get("max_concurrency") is not None:
        checked["max_concurrency"] = positive_int(options["max_concurrency"], "max_concurrency")
    if options.get("concurrency_groups") is not None:
        checked["concurrency_groups"] = concurrency_groups(options["concurrency_groups"])
    for option in ("max_restarts", "max_task_retries"):
        if options.get(option) is not None:
            checked[option] = count_or_forever(options[option], option)
    pending = options.get("max_pending_calls")
    if pending is not None and not (type(pending) is int and pending == -1):  # -1: Ray's unlimited
        checked["max_pending_calls"] = positive_int(pending, "max_pending_calls (or -1)")
    if options.get("name") is not None:
        checked["name"] = actor_name(options["name"], "name")
    if options.get("process") is not None:
        checked["process"] = require_bool(options["process"], "process")
    if "get_if_exists" in options:
        require_bool(options["get_if_exists"], "get_if_exists")
    if options.get("get_if_exists"):
        if "name" not in checked:
            raise ValueError(
                "get_if_exists=True needs a name=: it returns the actor of that "
                "name if there is one"
            )
        checked["get_if_exists"] = True
    return checked


def function_options(options: dict[str, Any], where: str) -> None:
    unknown = (
        set(options)
        - IGNORED_TASK_OPTIONS
        - {"num_returns", "process", "_generator_backpressure_num_objects"}
    )
    if unknown:
        hint = ""
        if unknown & ACTOR_CREATION_OPTIONS:
            hint = " (max_concurrency and concurrency_groups apply to actor classes)"
        raise TypeError(
            f"{where} got unsupported option(s) {sorted(unknown)}{hint}; remote functions "
            f"accept num_returns, process, and Ray's scheduling options "
            f"{sorted(IGNORED_TASK_OPTIONS)} (accepted, no effect in one process)"
        )
