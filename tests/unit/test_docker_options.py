"""`docker run` options read as docker reads them: clustered short flags, values, and the two refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudtik_jupyter.config import load_config_text
from cloudtik_jupyter.config.docker_options import check_run_option, parse_run_flags, privileged_problem


def flags(*words: str) -> list[tuple[str, str | None]]:
    return [(f.name, f.value) for f in parse_run_flags(list(words))]


def test_flags_are_read_like_docker_reads_them() -> None:
    assert flags("-it") == [("interactive", None), ("tty", None)]
    assert flags("-p8080:80", "-e", "A=1", "-e=B=2") == [
        ("publish", "8080:80"),
        ("env", "A=1"),
        ("env", "B=2"),
    ]
    assert flags("--shm-size", "1g", "--init", "--tty=false") == [
        ("shm-size", "1g"),
        ("init", None),
        ("tty", "false"),
    ]
    assert flags("-itv", "/:/host") == [("interactive", None), ("tty", None), ("volume", "/:/host")]
    for bad in (["ubuntu"], ["-e"], ["--label"], ["-Z"]):
        with pytest.raises(ValueError):
            flags(*bad)


@given(
    booleans=st.lists(st.sampled_from("ditP"), unique=True, min_size=1),
    valued=st.sampled_from([None, ("v", "/:/h"), ("e", "X=1"), ("p", "80:80")]),
)
def test_a_cluster_of_short_flags_means_the_same_as_the_flags_apart(
    booleans: list[str], valued: tuple[str, str] | None
) -> None:
    apart = [f"-{b}" for b in booleans]
    together = "-" + "".join(booleans)
    if valued:
        apart += [f"-{valued[0]}", valued[1]]
        together += valued[0]
    assert flags(*apart) == flags(together, *([valued[1]] if valued else []))
    # ... and a -d hidden in a cluster is found either way.
    if "d" in booleans:
        with pytest.raises(ValueError, match="-d"):
            check_run_option(" ".join([together, *([valued[1]] if valued else [])]))


@pytest.mark.parametrize(
    "option",
    [
        "--privileged",
        "--cap-add SYS_ADMIN",
        "--security-opt apparmor=unconfined",
        "--device=/dev/kvm",
        "--pid host",
        "--userns=host",
        "-v /etc:/etc",
        "--mount type=bind,src=/,dst=/h",
        "--volumes-from other",
    ],
)
def test_privilege_raising_options_need_the_explicit_allowance(option: str) -> None:
    assert privileged_problem(option)
    docker = f"docker: {{image: x, run_options: ['{option}']"
    with pytest.raises(Exception, match="allow_privileged_options"):
        load_config_text(f"cluster_name: p\nfrom: virtual-small\n{docker}}}\n")
    allowed = load_config_text(
        f"cluster_name: p\nfrom: virtual-small\n{docker}, allow_privileged_options: true}}\n"
    )
    assert allowed.docker.run_options == [option]


@pytest.mark.parametrize(
    "option",
    [
        "--privileged=false",
        "--security-opt no-new-privileges",
        "-v named:/data",
        "--mount type=tmpfs,dst=/t",
        "--ulimit nofile=1024:1024",
        "-e HOME=/x",
        "--pid=private",
    ],
)
def test_harmless_options_pass(option: str) -> None:
    assert privileged_problem(option) is None
