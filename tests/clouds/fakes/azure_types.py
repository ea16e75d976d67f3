"""What each ARM resource type the Azure fake serves checks and computes, as Azure does: references must
exist, address ranges must fit and not overlap, a resource in use can't be deleted, VMs take their disk
and NIC with them when told to, role assignments need principals and unique (role, principal, scope).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import uuid
from typing import Any

from . import azure_schemas as S
from .azure_arm import ASYNC, LOCATION, RESOURCE_GROUPS, SYNC, Arm, Path, Resource, TypeSpec
from .http import FakeError

NET = "Microsoft.Network"
VNET = f"{NET}/virtualNetworks"
SUBNET = f"{VNET}/subnets"
PEERING = f"{VNET}/virtualNetworkPeerings"
NSG = f"{NET}/networkSecurityGroups"
PUBLIC_IP = f"{NET}/publicIPAddresses"
NAT = f"{NET}/natGateways"
NIC = f"{NET}/networkInterfaces"
VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
STORAGE = "Microsoft.Storage/storageAccounts"
CONTAINER = f"{STORAGE}/blobServices/containers"

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
STORAGE_NAME = re.compile(r"^[a-z0-9]{3,24}$")
RESERVED_USERS = {
    "administrator",
    "admin",
    "user",
    "user1",
    "test",
    "user2",
    "test1",
    "user3",
    "admin1",
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin2",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test2",
    "test3",
    "user4",
    "user5",
}
BUILT_IN_ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
    "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
}
_public_ips = itertools.count(10)


def _net(cidr: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(cidr)
    except ValueError:
        raise FakeError(
            400, "InvalidAddressPrefixFormat", f"Address prefix {cidr} of {where} is not valid."
        ) from None


def _refs(arm: Arm, rtype: str, key: str, target: str) -> list[Resource]:
    """Resources of `rtype` whose properties[key] (a reference or list of them) names `target`."""
    t = target.lower()
    found = []
    for r in arm.of_type(rtype):
        value = r.props.get(key)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict) and str(v.get("id", "")).lower() == t for v in values):
            found.append(r)
    return found


def _in_use(code: str, what: Resource, users: list[Resource]) -> None:
    if users:
        raise FakeError(
            400,
            code,
            f"{what.type.rsplit('/', 1)[-1]} {what.name} is in use by {users[0].id} and cannot be deleted.",
        )


# -- resource groups and networks --------------------------------------------------------------------


def delete_group(arm: Arm, rg: Resource) -> None:
    prefix = rg.id.lower() + "/"
    for r in sorted(
        (r for r in arm.resources.values() if r.id.lower().startswith(prefix)), key=lambda r: -len(r.id)
    ):
        arm.resources.pop(r.id.lower(), None)  # a group takes everything in it, whatever depends on what


def _vnet_spaces(vnet: Resource) -> list[Any]:
    return [_net(p, vnet.id) for p in vnet.props["addressSpace"]["addressPrefixes"]]


def create_vnet(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    for prefix in body["properties"]["addressSpace"]["addressPrefixes"]:
        _net(prefix, path.id)
    listed = {s.get("name", "").lower() for s in body["properties"].pop("subnets", None) or []}
    if existing is not None:  # a PUT replaces the subnet list: unlisted subnets are deleted, if they can be
        for sub in arm.children(existing.id, SUBNET):
            if sub.name.lower() not in listed:
                arm.remove(sub)
    if listed - {s.name.lower() for s in arm.children(path.id, SUBNET)}:
        raise FakeError(400, "InvalidRequestFormat", "this fake creates subnets with their own PUT only")
    return body


def delete_vnet(arm: Arm, vnet: Resource) -> None:
    for sub in arm.children(vnet.id, SUBNET):
        arm.remove(sub)
    for peering in arm.children(vnet.id, PEERING):
        arm.remove(peering)
    for other in _refs(arm, PEERING, "remoteVirtualNetwork", vnet.id):
        other.props["peeringState"] = "Disconnected"


def create_subnet(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    props = body["properties"]
    vnet = arm.require(path.parent, path.id)
    prefixes = [props["addressPrefix"]] if props.get("addressPrefix") else props.get("addressPrefixes", [])
    if not prefixes:
        raise FakeError(400, "InvalidRequestFormat", f"Subnet {path.name} needs an addressPrefix.")
    for prefix in prefixes:
        net = _net(prefix, path.id)
        if not any(net.subnet_of(space) for space in _vnet_spaces(vnet)):  # type: ignore[arg-type]
            raise FakeError(
                400,
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet {path.name} ({net}) is not in the address space of {vnet.name}.",
            )
        for sibling in arm.children(vnet.id, SUBNET):
            if sibling.name.lower() != path.name.lower() and net.overlaps(
                _net(sibling.props["addressPrefix"], sibling.id)
            ):
                raise FakeError(
                    400,
                    "NetcfgSubnetRangesOverlap",
                    f"Subnet {path.name} ({net}) overlaps subnet {sibling.name}.",
                )
    for key, rtype in (("networkSecurityGroup", NSG), ("natGateway", NAT)):
        if key in props:
            arm.require(props[key]["id"], f"{path.id}.{key}")
            if arm.get(props[key]["id"]).type != rtype:  # type: ignore[union-attr]
                raise FakeError(400, "InvalidResourceReference", f"{key} of {path.name} is not a {rtype}")
    return body


def delete_subnet(arm: Arm, sub: Resource) -> None:
    users = [
        n
        for n in arm.of_type(NIC)
        if any(c["properties"]["subnet"]["id"].lower() == sub.id.lower() for c in n.props["ipConfigurations"])
    ]
    _in_use("InUseSubnetCannotBeDeleted", sub, users)


def create_nsg(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    seen: set[tuple[str, int]] = set()
    for rule in body.get("properties", {}).get("securityRules", []):
        p = rule["properties"]
        priority = p["priority"]
        if not isinstance(priority, int) or not 100 <= priority <= 4096:
            raise FakeError(
                400,
                "SecurityRuleInvalidPriority",
                f"Security rule {rule['name']} has invalid priority {priority}.",
            )
        if (p["direction"], priority) in seen:
            raise FakeError(
                400, "SecurityRulesConflictingPriority", f"Security rules share priority {priority}."
            )
        seen.add((p["direction"], priority))
        if bool(p.get("sourceAddressPrefix")) == bool(p.get("sourceAddressPrefixes")):
            raise FakeError(
                400,
                "SecurityRuleInvalidAddressPrefix",
                f"Security rule {rule['name']} needs exactly one of sourceAddressPrefix and sourceAddressPrefixes.",
            )
        for prefix in p.get("sourceAddressPrefixes") or [p["sourceAddressPrefix"]]:
            if prefix not in ("*", "Internet", "VirtualNetwork", "AzureLoadBalancer"):
                _net(prefix, f"security rule {rule['name']}")
    return body


def delete_nsg(arm: Arm, nsg: Resource) -> None:
    _in_use(
        "InUseNetworkSecurityGroupCannotBeDeleted",
        nsg,
        _refs(arm, SUBNET, "networkSecurityGroup", nsg.id) + _refs(arm, NIC, "networkSecurityGroup", nsg.id),
    )


def create_public_ip(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    props = body.setdefault("properties", {})
    if body.get("sku", {}).get("name") == "Standard" and props.get("publicIPAllocationMethod") != "Static":
        raise FakeError(
            400,
            "StandardSkuPublicIPAddressesMustBeStatic",
            "Standard sku public IP addresses require an allocation method of Static.",
        )
    props["ipAddress"] = (
        existing.props["ipAddress"] if existing else f"198.51.100.{next(_public_ips) % 250 + 2}"
    )
    return body


def _ip_users(arm: Arm, ip: Resource) -> list[Resource]:
    nics = [
        n
        for n in arm.of_type(NIC)
        if any(
            str(c["properties"].get("publicIPAddress", {}).get("id", "")).lower() == ip.id.lower()
            for c in n.props["ipConfigurations"]
        )
    ]
    return _refs(arm, NAT, "publicIpAddresses", ip.id) + nics


def delete_public_ip(arm: Arm, ip: Resource) -> None:
    _in_use("PublicIPAddressCannotBeDeleted", ip, _ip_users(arm, ip))


def create_nat(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    for ref in body["properties"]["publicIpAddresses"]:
        ip = arm.require(ref["id"], f"{path.id}.publicIpAddresses")
        if ip.body.get("sku", {}).get("name") != "Standard":
            raise FakeError(
                400, "NatGatewayCannotUseBasicSkuPublicIp", "A NAT gateway needs Standard SKU public IPs."
            )
    return body


def delete_nat(arm: Arm, nat: Resource) -> None:
    _in_use("InUseNatGatewayCannotBeDeleted", nat, _refs(arm, SUBNET, "natGateway", nat.id))


def create_peering(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    local = arm.require(path.parent, path.id)
    remote = arm.require(body["properties"]["remoteVirtualNetwork"]["id"], f"{path.id}.remoteVirtualNetwork")
    if any(a.overlaps(b) for a in _vnet_spaces(local) for b in _vnet_spaces(remote)):
        raise FakeError(
            400,
            "VnetAddressSpacesOverlap",
            f"Cannot peer {local.name} with {remote.name}: their address spaces overlap.",
        )
    back = [
        p
        for p in arm.children(remote.id, PEERING)
        if p.props["remoteVirtualNetwork"]["id"].lower() == local.id.lower()
    ]
    for p in back:
        p.props["peeringState"] = "Connected"
    body["properties"]["peeringState"] = "Connected" if back else "Initiated"
    return body


def delete_peering(arm: Arm, peering: Resource) -> None:
    remote = peering.props["remoteVirtualNetwork"]["id"]
    for p in arm.children(remote, PEERING):
        if p.props["remoteVirtualNetwork"]["id"].lower() == peering.parent.lower():
            p.props["peeringState"] = "Disconnected"


# -- identities and roles ----------------------------------------------------------------------------


def create_identity(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    keep = existing.props if existing else {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}
    body["properties"] = {**body.get("properties", {}), **keep, "tenantId": arm.tenant}
    return body


def _covers(scopes: list[str], scope: str) -> bool:
    s = scope.lower().rstrip("/")
    return any(s == a.lower().rstrip("/") or s.startswith(a.lower().rstrip("/") + "/") for a in scopes)


def create_role_definition(
    arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None
) -> dict[str, Any]:
    props = body["properties"]
    if not GUID.match(path.name or ""):
        raise FakeError(400, "InvalidRoleDefinitionId", "The role definition ID must be a GUID.")
    for scope in props["assignableScopes"]:
        if (
            arm.get(scope) is None
            and scope.lower().rstrip("/") != f"/subscriptions/{arm.subscription}".lower()
        ):
            raise FakeError(400, "InvalidAssignableScope", f"Assignable scope {scope} does not exist.")
    if not _covers(props["assignableScopes"], path.parent):
        raise FakeError(
            400,
            "InvalidCreateRoleDefinitionRequest",
            f"The scope {path.parent} is not among the role's assignable scopes.",
        )
    for other in arm.of_type(ROLE_DEFINITION):
        if other.props["roleName"] == props["roleName"] and other.name.lower() != (path.name or "").lower():
            raise FakeError(
                409,
                "RoleDefinitionWithSameNameExists",
                f"A custom role with the same name {props['roleName']} already exists.",
            )
    return {**body, "properties": {**props, "type": "CustomRole"}}


def role_definition(arm: Arm, ident: str) -> dict[str, Any] | None:
    """A role definition by id (any scope: the GUID decides), built-in or custom."""
    guid = ident.rstrip("/").rsplit("/", 1)[-1].lower()
    if guid in BUILT_IN_ROLES:
        return {"roleName": BUILT_IN_ROLES[guid], "type": "BuiltInRole", "assignableScopes": ["/"]}
    custom = [r for r in arm.of_type(ROLE_DEFINITION) if r.name.lower() == guid]
    return custom[0].props if custom else None


def delete_role_definition(arm: Arm, role: Resource) -> None:
    users = [
        a
        for a in arm.of_type(ROLE_ASSIGNMENT)
        if a.props["roleDefinitionId"].rsplit("/", 1)[-1].lower() == role.name.lower()
    ]
    if users:
        raise FakeError(
            409,
            "RoleDefinitionHasAssignments",
            f"There are existing role assignments referencing role {role.name}.",
        )


def create_role_assignment(
    arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None
) -> dict[str, Any]:
    props = body["properties"]
    if not GUID.match(path.name or ""):
        raise FakeError(400, "InvalidRoleAssignmentId", "The role assignment ID must be a GUID.")
    role = role_definition(arm, props["roleDefinitionId"])
    if role is None:
        raise FakeError(
            400,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition {props['roleDefinitionId']} does not exist.",
        )
    if role.get("type") == "CustomRole" and not _covers(role["assignableScopes"], path.parent):
        raise FakeError(
            400, "InvalidRoleAssignmentScope", f"Role {role['roleName']} can't be assigned at {path.parent}."
        )
    if props["principalId"] not in {i.props["principalId"] for i in arm.of_type(IDENTITY)}:
        raise FakeError(
            400, "PrincipalNotFound", f"Principal {props['principalId']} does not exist in the directory."
        )
    stored = {**props, "scope": path.parent}
    if existing is not None and any(
        existing.props.get(k) != stored.get(k) for k in ("roleDefinitionId", "principalId")
    ):
        raise FakeError(
            409,
            "RoleAssignmentUpdateNotPermitted",
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        )
    for other in arm.children(path.parent, ROLE_ASSIGNMENT):
        same = (
            other.props["principalId"] == props["principalId"]
            and other.props["roleDefinitionId"].lower() == props["roleDefinitionId"].lower()
        )
        if same and other.name.lower() != (path.name or "").lower():
            raise FakeError(409, "RoleAssignmentExists", "The role assignment already exists.")
    return {"properties": stored}


# -- storage, NICs, VMs ------------------------------------------------------------------------------


def create_storage(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    if not STORAGE_NAME.match(path.name or ""):
        raise FakeError(
            400,
            "AccountNameInvalid",
            f"{path.name} is not a valid storage account name: 3-24 lowercase letters and digits.",
        )
    taken = [r for r in arm.of_type(STORAGE) if r.name == path.name and r.id.lower() != path.key]
    if taken:
        raise FakeError(
            409, "StorageAccountAlreadyTaken", f"The storage account named {path.name} is already taken."
        )
    return body


def delete_storage(arm: Arm, account: Resource) -> None:
    for r in list(arm.resources.values()):
        if r.id.lower().startswith(account.id.lower() + "/"):
            arm.resources.pop(r.id.lower(), None)


def create_nic(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    configs = body["properties"]["ipConfigurations"]
    old = (
        {c["name"]: c["properties"].get("privateIPAddress") for c in existing.props["ipConfigurations"]}
        if existing
        else {}
    )
    for config in configs:
        props = config["properties"]
        subnet = arm.require(props["subnet"]["id"], f"{path.id}.ipConfigurations.subnet")
        if "publicIPAddress" in props:
            ip = arm.require(props["publicIPAddress"]["id"], f"{path.id}.ipConfigurations.publicIPAddress")
            users = [u for u in _ip_users(arm, ip) if u.id.lower() != path.key]
            if users:
                raise FakeError(
                    400, "PublicIPAddressInUse", f"Public IP {ip.name} is already used by {users[0].id}."
                )
        taken = {
            c["properties"].get("privateIPAddress")
            for n in arm.of_type(NIC)
            for c in n.props["ipConfigurations"]
        }
        hosts = (
            str(h) for i, h in enumerate(_net(subnet.props["addressPrefix"], subnet.id).hosts()) if i >= 3
        )
        props["privateIPAddress"] = old.get(config["name"]) or next(h for h in hosts if h not in taken)
        props.setdefault("privateIPAllocationMethod", "Dynamic")
    if existing is not None and "virtualMachine" in existing.props:
        body["properties"]["virtualMachine"] = existing.props["virtualMachine"]
    return body


def delete_nic(arm: Arm, nic: Resource) -> None:
    if "virtualMachine" in nic.props:
        raise FakeError(
            400,
            "NicInUse",
            f"Network Interface {nic.id} is used by existing resource {nic.props['virtualMachine']['id']}.",
        )


def create_vm(arm: Arm, path: Path, body: dict[str, Any], existing: Resource | None) -> dict[str, Any]:
    props = body["properties"]
    os_profile = props["osProfile"]
    user = os_profile["adminUsername"]
    if user.lower() in RESERVED_USERS or not re.match(r"^[a-z_][a-z0-9_-]{0,63}$", user):
        raise FakeError(400, "InvalidParameter", f"The admin username {user} is disallowed or invalid.")
    linux = os_profile.get("linuxConfiguration", {})
    keys = linux.get("ssh", {}).get("publicKeys", [])
    if linux.get("disablePasswordAuthentication") and not keys:
        raise FakeError(
            400, "InvalidParameter", "Password authentication is disabled but no SSH public keys were given."
        )
    for key in keys:
        if key["path"] != f"/home/{user}/.ssh/authorized_keys":
            raise FakeError(
                400,
                "InvalidParameter",
                f"The value of parameter linuxConfiguration.ssh.publicKeys.path is invalid: {key['path']}",
            )
        if not key["keyData"].startswith(("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-")):
            raise FakeError(
                400,
                "InvalidParameter",
                "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
            )
    if props.get("evictionPolicy") and props.get("priority") not in ("Spot", "Low"):
        raise FakeError(400, "InvalidParameter", "evictionPolicy can be set only when priority is Spot.")
    for ident in body.get("identity", {}).get("userAssignedIdentities") or {}:
        arm.require(ident, f"{path.id}.identity")
    for ref in props["networkProfile"]["networkInterfaces"]:
        nic = arm.require(ref["id"], f"{path.id}.networkProfile")
        owner = nic.props.get("virtualMachine", {}).get("id", "").lower()
        if owner and owner != path.key:
            raise FakeError(400, "NicInUse", f"Network interface {nic.name} is already used by {owner}.")
        nic.props["virtualMachine"] = {"id": path.id}
    os_disk = props["storageProfile"]["osDisk"]
    if existing is not None:
        os_disk["managedDisk"] = existing.props["storageProfile"]["osDisk"]["managedDisk"]
        os_disk["name"] = existing.props["storageProfile"]["osDisk"]["name"]
        props["vmId"] = existing.props["vmId"]
    else:
        group = path.parent
        disk_name = f"{path.name}_OsDisk_1_{uuid.uuid4().hex}"
        disk_id = f"{group}/providers/{DISK}/{disk_name}"
        arm.resources[disk_id.lower()] = Resource(
            disk_id,
            DISK,
            group,
            {
                "location": body["location"],
                "managedBy": path.id,
                "properties": {"diskSizeGB": os_disk.get("diskSizeGB", 30)},
            },
        )
        os_disk["name"] = disk_name
        os_disk["managedDisk"] = {**os_disk.get("managedDisk", {}), "id": disk_id}
        props["vmId"] = str(uuid.uuid4())
    return body


def delete_vm(arm: Arm, vm: Resource) -> None:
    props = vm.props
    for ref in props["networkProfile"]["networkInterfaces"]:
        nic = arm.get(ref["id"])
        if nic is None:
            continue
        nic.props.pop("virtualMachine", None)
        if ref.get("properties", {}).get("deleteOption") == "Delete":
            for config in nic.props["ipConfigurations"]:
                public = config["properties"].get("publicIPAddress", {})
                ip = arm.get(public["id"]) if public else None
                arm.remove(nic)
                if ip is not None and public.get("properties", {}).get("deleteOption") == "Delete":
                    arm.remove(ip)
    os_disk = props["storageProfile"]["osDisk"]
    disk = arm.get(os_disk["managedDisk"]["id"])
    if disk is not None:
        disk.body.pop("managedBy", None)
        if os_disk.get("deleteOption") == "Delete":
            arm.remove(disk)


def delete_disk(arm: Arm, disk: Resource) -> None:
    if disk.body.get("managedBy"):
        raise FakeError(
            409, "OperationNotAllowed", f"Disk {disk.name} is attached to VM {disk.body['managedBy']}."
        )


TYPES = {
    RESOURCE_GROUPS: TypeSpec(S.RESOURCE_GROUP, SYNC, delete=delete_group, delete_style=LOCATION),
    VNET: TypeSpec(S.VIRTUAL_NETWORK, ASYNC, create_vnet, delete_vnet),
    SUBNET: TypeSpec(S.SUBNET, ASYNC, create_subnet, delete_subnet),
    PEERING: TypeSpec(S.PEERING, ASYNC, create_peering, delete_peering),
    NSG: TypeSpec(S.NETWORK_SECURITY_GROUP, ASYNC, create_nsg, delete_nsg),
    PUBLIC_IP: TypeSpec(S.PUBLIC_IP, ASYNC, create_public_ip, delete_public_ip),
    NAT: TypeSpec(S.NAT_GATEWAY, ASYNC, create_nat, delete_nat),
    NIC: TypeSpec(S.NETWORK_INTERFACE, ASYNC, create_nic, delete_nic),
    VM: TypeSpec(S.VIRTUAL_MACHINE, ASYNC, create_vm, delete_vm),
    DISK: TypeSpec({}, ASYNC, delete=delete_disk),
    IDENTITY: TypeSpec(S.IDENTITY, SYNC, create_identity),
    ROLE_DEFINITION: TypeSpec(S.ROLE_DEFINITION, SYNC, create_role_definition, delete_role_definition),
    ROLE_ASSIGNMENT: TypeSpec(S.ROLE_ASSIGNMENT, SYNC, create_role_assignment),
    STORAGE: TypeSpec(S.STORAGE_ACCOUNT, LOCATION, create_storage, delete_storage, delete_style=SYNC),
    CONTAINER: TypeSpec({}, SYNC, virtual_parent=True),
}
