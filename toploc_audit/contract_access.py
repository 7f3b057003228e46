"""The contract client a command acts through, and whose key it acts with: one place for every role.

Each role has a default key: the challenger TOPLOC_AUDIT_CHALLENGER_KEY or <home>/challenger.key, the
provider TOPLOC_AUDIT_PROVIDER_KEY or <home>/provider.key, a validator TOPLOC_AUDIT_VALIDATOR_KEY or
the only key file in <home>/validators/. `--key-file` overrides it. Key files must be readable by
their owner only (mode 0600, anchor.keyfiles), or the command refuses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchor.errors import InputError
from anchor.keyfiles import configured_key, read_key_file
from anchor.settings import Settings

ROLES = ("provider", "validator", "challenger")


def role_key(settings: Settings, role: str, key_file: Path | None) -> tuple[str, str]:
    """(hex key, where it came from) for `role`; InputError naming `key-file` when there is none."""
    if key_file is not None:
        return read_key_file(key_file), str(key_file)
    if role == "validator":
        if settings.validator_key is not None:
            return settings.validator_key, "TOPLOC_AUDIT_VALIDATOR_KEY"
        files = sorted(settings.validator_keys_dir.glob("0x*.key"))
        if len(files) == 1:
            return read_key_file(files[0]), str(files[0])
        found = f"{len(files)} key files in {settings.validator_keys_dir}"
        raise InputError("key-file", f"give --key-file or set TOPLOC_AUDIT_VALIDATOR_KEY ({found})")
    variable, path = {
        "provider": ("TOPLOC_AUDIT_PROVIDER_KEY", settings.provider_key_file),
        "challenger": ("TOPLOC_AUDIT_CHALLENGER_KEY", settings.challenger_key_file),
    }[role]
    value = settings.provider_key if role == "provider" else settings.challenger_key
    configured = configured_key(value, variable, path)
    if configured is not None:
        return configured
    raise InputError("key-file", f"give --key-file, set {variable} or write {path}")


def contract_client(role: str | None, key_file: Path | None = None) -> Any:
    """The deployment's ToplocAuditClient acting as `role`'s account (None: reading only), checked to
    be the contract the deployment file names."""
    from anchor.chain.client import ToplocAuditClient
    from anchor.chain.connection import connect
    from anchor.chain.deployment import Deployment
    from verifier.runtime import load_key

    settings = Settings.from_env()
    deployment = Deployment.load(settings.deployment_file)
    account = None if role is None else load_key(*role_key(settings, role, key_file))
    w3 = connect(settings.rpc_url or deployment.rpc_url)
    deployment.check_on_chain(w3)
    return ToplocAuditClient(w3, deployment.address, account)
