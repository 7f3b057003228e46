"""The chain side of the log: compiling the contracts, running Anvil, deploying, and a typed client.

- `solc` / `artifacts`: compile contracts/ with npm solc through py-solc-x; committed artifacts.
- `anvil`: start and stop a local Anvil node; the dev accounts' keys.
- `parameters` / `deployment`: the deployment parameters, deploying, the deployment file.
- `client`: `ToplocAuditClient`, typed calls and transactions with readable custom errors.
- `committee`: the contract's committee draw, in Python.
"""

from anchor.chain.client import (
    Ballot,
    Checkpoint,
    Dispute,
    Outcome,
    Role,
    StakeInfo,
    ToplocAuditClient,
    Totals,
)
from anchor.chain.deployment import Deployment, deploy_toploc_audit
from anchor.chain.errors import ChainError, ContractRevert
from anchor.chain.parameters import Parameters
from anchor.chain.transactions import Sent

__all__ = [
    "Ballot",
    "ChainError",
    "Checkpoint",
    "ContractRevert",
    "Deployment",
    "Dispute",
    "Outcome",
    "Parameters",
    "Role",
    "Sent",
    "StakeInfo",
    "ToplocAuditClient",
    "Totals",
    "deploy_toploc_audit",
]
