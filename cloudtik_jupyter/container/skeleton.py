"""A skeleton image, built without any registry: ``python -m cloudtik_jupyter.container.skeleton [TAG]``.

It holds only empty directories and ``bin``/``lib``/``lib64`` links into ``/usr``; with
``docker.host_environment: true`` the node's /usr, /etc and Python environment are bind-mounted
read-only over it, so the container runs exactly the software the node has, in its own filesystem,
process tree and cgroup. ``/sbin`` is a real (empty) directory: ``--init`` mounts docker-init there.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import Mapping

DEFAULT_TAG = "cloudtik-skeleton:local"
_DIRS = ("usr", "etc", "sbin", "proc", "sys", "dev", "root", "home", "run", "var", "opt", "srv", "mnt")
_LINKS = {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64"}


def skeleton_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in [*((d, 0o755) for d in _DIRS), ("tmp", 0o1777)]:
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, mode
            tar.addfile(entry)
        for name, target in _LINKS.items():
            entry = tarfile.TarInfo(name)
            entry.type, entry.linkname = tarfile.SYMTYPE, target
            tar.addfile(entry)
    return buffer.getvalue()


def build_skeleton_image(
    tag: str = DEFAULT_TAG, *, docker: str = "docker", env: Mapping[str, str] | None = None
) -> str:
    """Import the skeleton as `tag` into the Docker daemon `docker` talks to; returns the image id."""
    done = subprocess.run(
        [docker, "import", "-", tag],
        input=skeleton_tar(),
        capture_output=True,
        env=dict(env) if env is not None else None,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker import failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    tag = args[0] if args else DEFAULT_TAG
    try:
        image = build_skeleton_image(tag)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{tag} {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
