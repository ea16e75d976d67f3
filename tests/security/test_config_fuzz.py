"""The config loader under random input (hypothesis): whatever the text or mapping, it returns a config or
raises `ConfigError` with one short line; never another exception (a traceback for the user), never more
than 2 s for one input. Runs for `CLOUDTIK_FUZZ_SECONDS` (default 60) in CI."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudtik_jupyter.config import ClusterConfig, load_config, load_config_text
from cloudtik_jupyter.errors import ConfigError

FUZZ_SECONDS = float(os.environ.get("CLOUDTIK_FUZZ_SECONDS", "60"))
BASE_DIR = Path(__file__).parent  # relative paths in fuzzed configs resolve here (nothing is written)

KEYS = [
    "cluster_name",
    "workspace_name",
    "from",
    "provider",
    "type",
    "address_block",
    "region",
    "endpoint_url",
    "auth",
    "ssh_user",
    "ssh_private_key",
    "head_node_type",
    "available_node_types",
    "head",
    "worker",
    "min_workers",
    "max_workers",
    "resources",
    "CPU",
    "node_config",
    "file_mounts",
    "setup_commands",
    "initialization_commands",
    "runtime",
    "types",
    "spark",
    "docker",
    "enabled",
    "image",
    "run_options",
    "mounts",
    "allow_privileged_options",
    "controller_interval",
    "heartbeat_interval",
    "heartbeat_timeout",
    "idle_timeout_minutes",
    "redis_shards",
    "conf",
    "worker_memory",
    "<<",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "virtual",
            "aws",
            "head",
            "worker",
            "spark",
            "virtual-small",
            "127.9.0.0/16",
            "-dit",
            "--cap-add=ALL",
            "-v /:/host",
            "../../x",
            "/etc/passwd",
            "~/x",
            "512m",
            "1e-9",
            "",
        ]
    ),
    st.text(max_size=40),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), children, max_size=6),
    ),
    max_leaves=40,
)
MAPPINGS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=10)

# YAML fragments that exercise the parser's corners: anchors, merge keys, tags, flow styles, nesting.
FRAGMENTS = st.sampled_from(
    [
        "a: &x [1, 2]\n",
        "b: *x\n",
        "<<: {cluster_name: merged}\n",
        "c: &y {d: *y}\n",
        "e: !!binary aGk=\n",
        "f: !!timestamp 2001-12-14\n",
        "g: !!python/object:os.system ls\n",
        "h: [[[[[[]]]]]]\n",
        "? [k]\n: v\n",
        "i: 0x1F\n",
        "j: .inf\n",
        "k: .nan\n",
        "l: 1e999\n",
        "m: 0o17\n",
        "n: ~\n",
        "--- \n",
        "...\n",
        "o: |\n  multi\n  line\n",
        "cluster_name: fuzz\n",
        "from: virtual-small\n",
        "%YAML 1.1\n",
        "\t\x00\n",
        "available_node_types: {head: {}, worker: {max_workers: 99999999999}}\n",
        "from: /etc/passwd\n",
        "from: ./nope.yaml\n",
        "head_node_type: head\n",
        "p: &a [*a]\n",
        "q: 99999999999999999999999999\n",
    ]
)


def check(load: Any) -> None:
    started = time.monotonic()
    try:
        result = load()
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and 0 < len(text) <= 900, text[:200]
    else:
        assert isinstance(result, ClusterConfig)
    assert time.monotonic() - started < 2.0


@settings(max_examples=150, deadline=2000, database=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(st.text(max_size=300), st.lists(FRAGMENTS, max_size=12).map("".join)))
def fuzz_text(text: str) -> None:
    check(lambda: load_config_text(text, base_dir=BASE_DIR))


@settings(max_examples=150, deadline=2000, database=None, suppress_health_check=list(HealthCheck))
@given(data=MAPPINGS)
def fuzz_mapping(data: dict[str, Any]) -> None:
    check(lambda: load_config(data, base_dir=BASE_DIR))
    # The same data as YAML text, as a user would write it.
    try:
        text = yaml.safe_dump(data)
    except (yaml.YAMLError, ValueError, RecursionError):
        return
    check(lambda: load_config_text(text, base_dir=BASE_DIR))


@settings(max_examples=60, deadline=2000, database=None, suppress_health_check=list(HealthCheck))
@given(base=MAPPINGS, extra=st.lists(FRAGMENTS, max_size=6))
def fuzz_valid_base(base: dict[str, Any], extra: list[str]) -> None:
    """Mutations of a config that is valid, so validation runs deep (not just the first missing key)."""
    config = {
        "cluster_name": "fuzz",
        "from": "virtual-small",
        **{k: v for k, v in base.items() if k != "from"},
    }
    check(lambda: load_config(config, base_dir=BASE_DIR))
    try:
        text = yaml.safe_dump(config) + "".join(extra)
    except (yaml.YAMLError, ValueError, RecursionError):
        return
    check(lambda: load_config_text(text, base_dir=BASE_DIR))


def _engine_fault(exc: AssertionError) -> bool:
    """An assertion inside hypothesis' own engine (not in a test body): seen once in a 5-minute run
    (``assert i < len(self.spans)`` while generating mutations). Such a round is started afresh."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"hypothesis{os.sep}internal" in frames[-1].filename


def test_config_loader_survives_random_input_for_a_minute() -> None:
    rounds = engine_faults = 0
    stop = time.monotonic() + FUZZ_SECONDS
    while True:
        for fuzz in (fuzz_text, fuzz_mapping, fuzz_valid_base):
            try:
                fuzz()
            except AssertionError as exc:
                if not _engine_fault(exc) or engine_faults >= 3:
                    raise
                engine_faults += 1
        rounds += 1
        if time.monotonic() >= stop:
            break
    assert rounds >= 1
