"""Where a user's CLI session lives and who it is (standard library only: the thin client imports it).

A session serves one state dir, one install of the package (interpreter, package directory, version,
code and installed dependencies) and one environment (apart from the terminal's variables, sent with each command). Its files, in a
0700 directory: ``<state dir>/session/`` or, when that path is too long for a Unix socket, a private
directory under ``$XDG_RUNTIME_DIR`` or the temp dir:

    s-<key>.sock  the socket (0600)          s-<key>.lock  serialises starting and replacing a session
    s-<key>.pid   "pid start-time"           s-<key>.log   the session's log
    s-<key>.unsupported  sessions cannot work here (why): commands run in-process
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import sys
import time
import zlib

import cloudtik_jupyter

PROTOCOL = 1
ENV_NO_SESSION = "CLOUDTIK_NO_SESSION"
ENV_IDLE = "CLOUDTIK_SESSION_IDLE"  # seconds without a command before the session exits
ENV_FD = "CLOUDTIK_SESSION_FD"  # the listening socket a new session inherits
DEFAULT_IDLE = 600.0
# Per command, not per session: how the client's terminal looks (sent with each command).
TERMINAL_VARS = (
    "COLUMNS",
    "LINES",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)
# Differ between shells and terminals of one user without changing what a command does.
_VOLATILE = frozenset(
    (
        *TERMINAL_VARS,
        ENV_NO_SESSION,
        ENV_FD,
        "CLOUDTIK_HOME",  # part of the identity, resolved (a relative one depends on the cwd)
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "PS1",
        "PS2",
        "PROMPT_COMMAND",
        "TMUX_PANE",
        "WINDOWID",
        "TERM_SESSION_ID",
        "ITERM_SESSION_ID",
        "SSH_TTY",
        "GPG_TTY",
        "STY",
        "WT_SESSION",
    )
)
_MAX_SOCKET_PATH = 100  # AF_UNIX paths: 108 bytes on Linux, 104 on macOS


def state_dir() -> str:
    """`paths.home()` without pathlib (which the thin client does not import)."""
    return os.path.abspath(os.path.expanduser(os.environ.get("CLOUDTIK_HOME") or "~/.cloudtik"))


def _code_stamp(package: str) -> str:
    """Changes whenever a module of the package does (an edit, a reinstall): files, sizes, mtimes."""
    count = size = mtimes = newest = 0
    stack = [package]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.name.endswith(".py"):
                    st = e.stat(follow_symlinks=False)
                    count += 1
                    size += st.st_size
                    mtimes = (mtimes + st.st_mtime_ns) % (1 << 64)
                    newest = max(newest, st.st_mtime_ns)
                elif (
                    e.is_dir(follow_symlinks=False) and e.name != "__pycache__" and not e.name.startswith(".")
                ):
                    stack.append(e.path)
    return f"{count}-{size}-{newest}-{mtimes}"


def _site_stamp() -> int | None:
    """Changes when anything is installed into or removed from this environment (a new dependency)."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    try:
        return os.stat(os.path.join(sys.prefix, "lib", version, "site-packages")).st_mtime_ns
    except OSError:
        return None


def identity(environ: dict[str, str] | None = None) -> dict[str, object]:
    """What a client and its session must share (compared whole in the handshake)."""
    env = os.environ if environ is None else environ
    package = os.path.dirname(os.path.abspath(cloudtik_jupyter.__file__))
    return {
        "protocol": PROTOCOL,
        "version": cloudtik_jupyter.__version__,
        "package": package,
        "code": _code_stamp(package),
        "site": _site_stamp(),
        "python": sys.executable,
        "uid": os.getuid(),
        "home": state_dir(),
        "env": {k: v for k, v in env.items() if k not in _VOLATILE},
    }


def _checked_private_dir(path: str) -> str:
    """Create `path` 0700 or accept it only if it is a real directory of ours that nobody else can use."""
    try:  # noqa: SIM105 (contextlib: an import the thin client avoids)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a directory of this user")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


class Place:
    """A session's directory, key and identity (a plain class: dataclasses would import inspect)."""

    def __init__(self, directory: str, key: str, identity: dict[str, object]) -> None:
        self.directory = directory
        self.key = key
        self.identity = identity

    @property
    def socket(self) -> str:
        return os.path.join(self.directory, f"s-{self.key}.sock")

    @property
    def lock(self) -> str:
        return os.path.join(self.directory, f"s-{self.key}.lock")

    @property
    def pid_file(self) -> str:
        return os.path.join(self.directory, f"s-{self.key}.pid")

    @property
    def log(self) -> str:
        return os.path.join(self.directory, f"s-{self.key}.log")

    @property
    def unsupported(self) -> str:
        """Present when sessions cannot work here (it says why): clients run commands in-process."""
        return os.path.join(self.directory, f"s-{self.key}.unsupported")

    def ensure(self) -> Place:
        if self.directory == os.path.join(str(self.identity["home"]), "session"):
            os.makedirs(os.path.dirname(self.directory), mode=0o700, exist_ok=True)
            _checked_private_dir(self.directory)
        else:  # a shared parent (temp dir): every level of ours must be private
            _checked_private_dir(os.path.dirname(self.directory))
            _checked_private_dir(self.directory)
        return self


def session_dirs(home: str) -> list[str]:
    """Where sessions of state dir `home` may live (the first that fits a socket path is used)."""
    short = f"{zlib.crc32(home.encode()):08x}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    temp = os.environ.get("TMPDIR") or "/tmp"
    candidates = [os.path.join(home, "session")]
    if runtime and os.path.isabs(runtime):
        candidates.append(os.path.join(runtime, "cloudtik", short))
    candidates.append(os.path.join(temp, f"cloudtik-{os.getuid()}", short))
    return candidates


def current() -> Place:
    """This process's session place (files not created: see `Place.ensure`)."""
    ident = identity()
    stable = {k: v for k, v in ident.items() if k not in ("code", "site", "version")}  # replace, not fork
    key = f"{zlib.crc32(json.dumps(stable, sort_keys=True).encode()):08x}"
    for directory in session_dirs(str(ident["home"])):
        if len(os.path.join(directory, f"s-{key}.sock")) <= _MAX_SOCKET_PATH:
            return Place(directory, key, ident)
    raise OSError(errno.ENAMETOOLONG, "no directory short enough for the session's socket")


class FileLock:
    """An exclusive flock with a deadline (polled: flock has no timeout of its own)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> FileLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    raise TimeoutError(f"{self.path} stayed locked for {self.timeout:g}s") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # releases the lock
