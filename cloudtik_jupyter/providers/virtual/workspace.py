"""The virtual workspace: an address block in 127.0.0.0/8, a state dir and an SSH key pair. No processes.

Lives under ``paths.workspaces_dir()/NAME``; clusters of the workspace take their addresses from the block.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ... import paths
from ...errors import ConfigError, ProviderError
from ..base import ResourceStatus
from ..common.steps import StepHooks, Steps

if TYPE_CHECKING:
    from ...config.schema import VirtualProviderConfig
    from ...config.workspace import WorkspaceConfig

STATE_FILE = "workspace.json"
KEY_FILE = "id_ed25519"
_FIRST_OCTET, _LAST_OCTET = 16, 254  # 127.0.x.x and 127.1.x.x stay for the host's own use
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class VirtualWorkspaceState:
    workspace_name: str
    address_block: str


def _block_of(octet: int) -> str:
    return f"127.{octet}.0.0/16"


class VirtualWorkspaceProvider:
    def __init__(
        self,
        provider_config: VirtualProviderConfig,
        workspace_name: str,
        config: WorkspaceConfig | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        hooks: StepHooks | None = None,
    ) -> None:
        self.provider_config = provider_config
        self.workspace_name = workspace_name
        self.config = config
        self._progress = progress
        self.hooks = hooks

    @property
    def dir(self) -> Path:
        return paths.workspaces_dir() / self.workspace_name

    @property
    def state_file(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def key_file(self) -> Path:
        return self.dir / KEY_FILE

    def state(self) -> VirtualWorkspaceState | None:
        try:
            return VirtualWorkspaceState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _blocks_in_use(self) -> set[str]:
        used = set()
        root = paths.workspaces_dir()
        for other in root.glob(f"*/{STATE_FILE}") if root.exists() else []:
            if other.parent.name == self.workspace_name:
                continue
            try:
                used.add(json.loads(other.read_text())["address_block"])
            except (OSError, ValueError, KeyError):
                continue
        return used

    def _choose_block(self) -> str:
        """The configured block; for "default" the state dir's default block (the one clusters use when
        they name no block); else a free /16 picked from the name (stable, distinct per workspace)."""
        from .addresses import default_address_block, parse_address_block

        used = self._blocks_in_use()
        if self.provider_config.address_block:
            net = parse_address_block(self.provider_config.address_block)
            clash = [b for b in used if ipaddress.ip_network(b).overlaps(net)]
            if clash:
                raise ConfigError("provider.address_block", f"{net} overlaps another workspace's {clash[0]}")
            return str(net)
        default = str(default_address_block(paths.home()))
        if self.workspace_name == DEFAULT_WORKSPACE and default not in used:
            return default
        used.add(default)
        span = _LAST_OCTET - _FIRST_OCTET + 1
        start = int(hashlib.sha256(self.workspace_name.encode()).hexdigest(), 16) % span
        for i in range(span):
            block = _block_of(_FIRST_OCTET + (start + i) % span)
            if block not in used:
                return block
        raise ProviderError("every 127.x.0.0/16 block is taken by a virtual workspace")

    def create(self) -> None:
        steps = Steps(self._progress, self.hooks, verb="creating")
        if self.state() is None:
            steps("address block", self._write_state)
        if not self.key_file.exists() or not self.key_file.with_suffix(".pub").exists():
            steps("SSH key pair", self._write_keys)

    def _write_state(self) -> None:
        state = VirtualWorkspaceState(self.workspace_name, self._choose_block())
        paths.write_private(self.state_file, json.dumps(asdict(state), indent=2))

    def _write_keys(self) -> None:
        private, public = _new_keypair(f"cloudtik-workspace-{self.workspace_name}")
        paths.write_private(self.key_file, private)
        paths.write_private(self.key_file.with_suffix(".pub"), public)

    def delete(self, force: bool = False) -> list[str]:
        """In reverse order of `create`; each step skips what is already gone. Returns what it removed."""
        steps = Steps(self._progress, self.hooks, verb="deleting")
        if self.key_file.exists() or self.key_file.with_suffix(".pub").exists():
            steps.remove("SSH key pair", self._remove_keys)
        if self.state_file.exists():
            state = self.state()
            steps.remove("address block", lambda: self._remove_state(state))
        if self.dir.exists():
            steps.remove("state dir", self._remove_dir)
        return steps.removed

    def _remove_keys(self) -> list[str]:
        pair = [self.key_file, self.key_file.with_suffix(".pub")]
        for key in pair:
            key.unlink(missing_ok=True)
        return [str(self.key_file)]

    def _remove_state(self, state: VirtualWorkspaceState | None) -> list[str]:
        self.state_file.unlink(missing_ok=True)
        return [state.address_block] if state else []

    def _remove_dir(self) -> list[str]:
        shutil.rmtree(self.dir, ignore_errors=True)
        return [str(self.dir)]

    def status(self) -> list[ResourceStatus]:
        state = self.state()
        return [
            ResourceStatus("state-dir", "directory", self.dir.is_dir(), str(self.dir)),
            ResourceStatus(
                "address-block", "address-block", state is not None, state.address_block if state else ""
            ),
            ResourceStatus("ssh-key", "key-pair", self.key_file.exists(), str(self.key_file)),
        ]

    def info(self) -> dict[str, str]:
        state = self.state()
        return {
            "provider": "virtual",
            "state_dir": str(self.dir),
            "address_block": state.address_block if state else "-",
            "public_key": str(self.key_file.with_suffix(".pub")),
        }


def _new_keypair(comment: str) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public + f" {comment}\n".encode()


def recorded_block(home: Path, workspace_name: str) -> str | None:
    """The address block `workspace create` recorded for a workspace under state dir `home`, if any."""
    try:
        data = json.loads((home / "workspaces" / workspace_name / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    block = data.get("address_block") if isinstance(data, dict) else None
    return str(block) if block else None


def workspace_address_block(workspace_name: str) -> str | None:
    """The block recorded for a virtual workspace on this machine (None if it was never created)."""
    from ...config.schema import VirtualProviderConfig

    state = VirtualWorkspaceProvider(VirtualProviderConfig(), workspace_name).state()
    return state.address_block if state else None
