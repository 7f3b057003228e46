"""`toploc-audit contracts`: compile the Solidity sources into the committed artifacts, or check them."""

from __future__ import annotations

import click


@click.group()
def contracts() -> None:
    """Build and check the Solidity contracts (contracts/src, contracts/test).

    They compile with solc 0.8.37 from npm (solcjs) through py-solc-x and a small node wrapper
    (contracts/solc.js), with the pinned settings in anchor/chain/solc.py.
    """


@contracts.command()
@click.option(
    "--check",
    is_flag=True,
    help="Compile and compare with the committed artifacts; write nothing; exit 1 if any differs.",
)
def build(check: bool) -> None:
    """Compile every contract and write its artifact (ABI and bytecode) to contracts/artifacts/
    (test-only contracts: contracts/test/artifacts/). Takes a few seconds."""
    from rich.console import Console

    from anchor.chain import artifacts, solc

    console = Console(stderr=True)
    sources = solc.source_files()
    with console.status(f"compiling {len(sources)} sources with solc {solc.SOLC_VERSION} (npm solcjs)..."):
        fresh = artifacts.compile_artifacts()
    if check:
        problems = artifacts.stale_artifacts(fresh)
        for problem in problems:
            click.echo(f"stale: {problem}", err=True)
        if problems:
            click.echo(
                "the committed artifacts differ from the sources: run `toploc-audit contracts build`",
                err=True,
            )
            raise SystemExit(1)
        click.echo(f"ok: {len(fresh)} artifacts match a fresh compile")
        return
    for path, artifact in zip(artifacts.write_artifacts(fresh), fresh, strict=True):
        size = len(artifact.deployed_bytecode) // 2
        click.echo(f"wrote {path.relative_to(solc.REPO_ROOT)} ({size:,} bytes deployed)")
