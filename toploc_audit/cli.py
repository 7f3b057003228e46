"""The `toploc-audit` entry point: one command, a subcommand per task.

Each subcommand lives in toploc_audit/commands/<module>.py and is imported only when it runs, so
`toploc-audit --help` answers at once (torch, transformers and web3 take seconds to import).
Errors of the project's own kinds become a one-line message and exit status 1, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> (module, attribute, one-line help shown by `toploc-audit --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "model": ("toploc_audit.commands.model", "model", "Prepare, fingerprint and list local models."),
    "demo": ("toploc_audit.commands.demo", "demo", "Run the whole story on the embedded defaults."),
    "db": ("toploc_audit.commands.db", "db", "Create or upgrade the database schema."),
    "serve": ("toploc_audit.commands.serve", "serve", "Run the recorder's HTTP API."),
    "provider": ("toploc_audit.commands.provider", "provider", "Register providers and declare models."),
    "anchor": ("toploc_audit.commands.anchor", "anchor", "Run the loop that anchors checkpoints on chain."),
    "trail": ("toploc_audit.commands.trail", "trail", "Show a record's audit trail as a timeline."),
    "receipt": ("toploc_audit.commands.receipt", "receipt", "Write a record's receipt file."),
    "verify-receipt": ("toploc_audit.commands.receipt", "verify_receipt", "Check a receipt on chain."),
    "fsck": ("toploc_audit.commands.fsck", "fsck", "Recompute every log root from the leaves and compare."),
    "generate": ("toploc_audit.commands.generate", "generate", "Generate with proofs; submit the record."),
    "validate": ("toploc_audit.commands.validate", "validate", "Judge a record file against a local model."),
    "dispute": ("toploc_audit.commands.dispute", "dispute", "Dispute log entries; follow and resolve."),
    "watch": ("toploc_audit.commands.watch", "watch", "Sync contract events; queue the validators' work."),
    "worker": ("toploc_audit.commands.worker", "worker", "Run a Celery worker for one validator key."),
    "contracts": ("toploc_audit.commands.contracts", "contracts", "Build and check the Solidity contracts."),
    "chain": ("toploc_audit.commands.chain", "chain", "Run a local chain; deploy the contract."),
    "stake": ("toploc_audit.commands.stakes", "stake", "Stake as a provider or validator."),
    "audit": ("toploc_audit.commands.audit", "audit", "Check random anchored entries; dispute failures."),
    "unstake": ("toploc_audit.commands.stakes", "unstake", "Start unbonding stake."),
    "withdraw": ("toploc_audit.commands.stakes", "withdraw", "Take matured stake and credits."),
    "balance": ("toploc_audit.commands.stakes", "balance", "Show an account's stake and credits."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="toploc-audit")
def cli() -> None:
    """toploc-audit: an accountable audit log for LLM inference with TOPLOC proofs.

    Configuration comes from TOPLOC_AUDIT_* environment variables (see the README); by default all
    state lives in ./.toploc-audit.
    """


def main() -> None:
    from anchor.errors import Error
    from gpu_core.errors import ToplocError

    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (Error, ToplocError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
