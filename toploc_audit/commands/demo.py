"""`toploc-audit demo` (`make demo`): the whole story on the embedded defaults, in one command.

In a state folder of its own (<home>/demo, recreated each run): Anvil, ToplocAudit deployed, a provider
and three validators staked, the recorder's API, three real Celery worker processes (one per validator
key) and the watcher, on a SQLite database and the SQLite broker. SmolLM2 generates honest records and
dishonest ones (another model's weights, a changed output token, float32 arithmetic declared as
bfloat16, and the prefill attack: text written without the model, proved by one honest prefill, which
only the sampler replay catches); they are logged and anchored; one honest record and every dishonest
one are disputed; the validators decide; the disputes resolve; each record's trail is printed with the
balances that moved, and a short table ends it. Everything it started is stopped, on success, error
or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from anchor.errors import Error
from anchor.settings import Settings, child_env

ETHER = 10**18
PROMPTS = (
    "What is the capital of France?",
    "Give me one tip for writing clear code.",
    "Name three primary colours.",
    "Why is the sky blue? Answer in one sentence.",
    "Describe the ocean in one sentence.",
)
CHEAP_ANSWER = "The ocean is a big blue place full of water, fish and waves, and I did not compute this."
KINDS = (
    ("honest", False),
    ("honest, disputed", False),
    ("another model's weights", True),
    ("an output token changed", True),
    ("fp32 computed, bf16 declared", True),
    ("cheap tokens, proofs from one honest prefill", True),
)


class DemoError(Error):
    """A step of the demo failed (the message says which, and where its logs are)."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class Processes:
    """Children started with their own process group and a log file each; `stop_all` ends them."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.children: list[Child] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "toploc_audit", *args],
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only the demo, which stops them in order
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def check(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                tail = child.log.read_text(errors="replace")[-1500:]
                raise DemoError(
                    f"{child.name} exited ({child.process.returncode}); its log {child.log}:\n{tail}"
                )

    def stop_all(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in self.children:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()


def _wait(condition: Callable[[], Any], timeout: float, what: str, check: Callable[[], None]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        check()
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@click.command()
@click.option(
    "--tokens", type=click.IntRange(8, 256), default=32, show_default=True, help="Output tokens per record."
)
@click.option(
    "--timeout",
    type=click.IntRange(60),
    default=1200,
    show_default=True,
    help="Seconds allowed for the validators.",
)
def demo(tokens: int, timeout: int) -> None:
    """Run the whole story on the embedded defaults (Anvil, SQLite, the SQLite broker, SmolLM2): stake,
    generate honest and dishonest records, anchor, dispute, let three validator workers decide, resolve,
    and print each record's trail with the balances that moved. Its state is in <home>/demo, recreated
    each run; everything it starts is stopped at the end, also on Ctrl-C."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    _quiet_transformers()
    base = Settings.from_env()
    home = base.home / "demo"
    shutil.rmtree(home, ignore_errors=True)
    (home / "validators").mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        run = _Run(console, base, home, tokens, timeout)
        stack.callback(run.stop)
        run.story()


class _Run:
    """One run of the demo; `stop` ends whatever `story` started."""

    def __init__(self, console: Any, base: Settings, home: Path, tokens: int, timeout: int) -> None:
        from anchor.chain.anvil import dev_account
        from anchor.records.registry import new_api_key

        self.console = console
        self.base = base
        self.home = home
        self.tokens = tokens
        self.timeout = timeout
        self.node: Any = None
        self.processes: Processes | None = None
        self.deployer, self.operator, self.provider, self.challenger = (dev_account(i) for i in range(4))
        self.validators = [dev_account(i) for i in (4, 5, 6)]
        self.api_key = new_api_key()  # the recorder requires one (TOPLOC_AUDIT_REQUIRE_API_KEY)

    def stop(self) -> None:
        if self.processes is not None:
            self.console.print("[dim]stopping the workers, the watcher and the API[/]")
            self.processes.stop_all()
        if self.node is not None:
            self.console.print("[dim]stopping Anvil[/]")
            self.node.stop()

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        started = time.monotonic()
        with self.console.status(text):
            yield
        self.console.print(f"[green]✓[/] {text} [dim]({time.monotonic() - started:.1f} s)[/]")

    def env(self) -> dict[str, str]:
        return child_env(
            TOPLOC_AUDIT_HOME=str(self.home),
            TOPLOC_AUDIT_MODELS=str(self.base.models_dir),
            TOPLOC_AUDIT_WATCH_SECONDS="0.5",
            TOPLOC_AUDIT_REQUEUE_SECONDS="30",
            TOPLOC_AUDIT_RETRY_SECONDS="2",
            TOPLOC_AUDIT_VALIDATE_RETRIES="2",
            OMP_NUM_THREADS="1",  # three workers share this machine's cores
        )

    def story(self) -> None:
        from gpu_core.runner.smollm2 import prepare_smollm2

        settings = Settings.from_env(self.env())
        with self.step(f"SmolLM2-135M-Instruct ready in {settings.models_dir}"):
            folder, _ = prepare_smollm2(settings.models_dir)
        client = self.chain(settings)
        self.database(settings, folder, client)
        recorder = self.start_services(settings)
        entries = self.records(settings, folder, recorder)
        self.anchor(settings)
        before = self.balances(client)
        disputes = self.disputes(settings, client, entries)
        self.decide(settings, client, disputes)
        after = self.balances(client)
        self.report(settings, client, entries, disputes, before, after)

    # -- setup --------------------------------------------------------------------------------------

    def chain(self, settings: Settings) -> Any:
        from anchor.chain.anvil import start_anvil
        from anchor.chain.client import Role, ToplocAuditClient
        from anchor.chain.deployment import deploy_toploc_audit
        from anchor.chain.parameters import Parameters
        from anchor.keyfiles import load_account, new_key_file, write_key_file

        with self.step("Anvil started, ToplocAudit deployed, provider and 3 validators staked"):
            self.node = start_anvil(accounts=10, log_path=self.home / "anvil.log")
            w3 = self.node.web3()
            # Three validators seat one committee and no appeal; drawDelay 1 because Anvil mines a block
            # per transaction only.
            parameters = Parameters(
                disputeWindow=3600,
                maxMergeDelay=3600,
                commitPeriod=900,
                revealPeriod=900,
                appealPeriod=900,
                appealRounds=0,
                drawDelay=1,
                unbondingPeriod=12_000,
            )
            # The recorder signs receipts with a fresh key of its own, not the operator's dev account.
            receipt_file = settings.receipt_key_file
            receipt_account = load_account(new_key_file(receipt_file), str(receipt_file))
            deployment = deploy_toploc_audit(
                w3,
                self.deployer,
                self.operator.address,
                parameters,
                self.node.url,
                receipt_signer=receipt_account.address,
                receipt_key=bytes(receipt_account.key),
            )
            deployment.save(settings.deployment_file)
            write_key_file(settings.log_key_file, self.operator.key.hex())
            write_key_file(settings.provider_key_file, self.provider.key.hex())
            write_key_file(settings.challenger_key_file, self.challenger.key.hex())
            for validator in self.validators:
                write_key_file(settings.validator_keys_dir / f"{validator.address}.key", validator.key.hex())
            client = ToplocAuditClient(w3, deployment.address)
            client.as_account(self.provider).stake(Role.PROVIDER, 5 * ETHER)
            for validator in self.validators:
                client.as_account(validator).stake(Role.VALIDATOR, ETHER)
        return client

    def database(self, settings: Settings, folder: Path, client: Any) -> None:
        from anchor.db import make_engine, session_factory, transaction, upgrade
        from anchor.records.registry import declare_model, limits_from_folder, register_provider
        from gpu_core.runner.fingerprint import fingerprint_model

        with self.step("database created; provider registered, SmolLM2 declared (log and chain)"):
            upgrade(settings.database_url)
            fingerprint = fingerprint_model(folder)
            engine = make_engine(settings.database_url)
            with transaction(session_factory(engine)) as s:
                register_provider(s, self.provider.address, "demo provider", self.api_key)
                declare_model(s, folder.name, fingerprint, limits_from_folder(folder))
            engine.dispose()
            client.as_account(self.provider).declare_model(folder.name, bytes.fromhex(fingerprint))

    def start_services(self, settings: Settings) -> str:
        import httpx

        from anchor.chain.anvil import free_port

        port = free_port()
        self.processes = Processes(self.home, {**self.env(), "TOPLOC_AUDIT_API_PORT": str(port)})
        with self.step("recorder API, watcher and 3 validator workers running (SQLite broker)"):
            self.processes.start("api", "serve")
            self.processes.start("watch", "watch")
            workers = [
                self.processes.start(
                    f"worker-{i}",
                    "worker",
                    "--key-file",
                    str(settings.validator_keys_dir / f"{v.address}.key"),
                )
                for i, v in enumerate(self.validators)
            ]
            url = f"http://127.0.0.1:{port}"

            def api_up() -> bool:
                try:
                    return httpx.get(f"{url}/v1/log", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            _wait(api_up, 120, "the recorder API", self.processes.check)
            for worker in workers:
                _wait(
                    lambda w=worker: " ready." in w.log.read_text(errors="replace"),
                    300,
                    f"{worker.name}",
                    self.processes.check,
                )
        return url

    # -- the provider ---------------------------------------------------------------------------------

    def records(self, settings: Settings, folder: Path, recorder: str) -> list[dict[str, Any]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from anchor.chain.deployment import Deployment
        from anchor.records import Record
        from anchor.records.eip712 import Domain
        from gpu_core.runner import tampering
        from gpu_core.runner.decoding import DecodeSpec
        from gpu_core.runner.fingerprint import fingerprint_tokenizer
        from gpu_core.runner.generate import GenerationRequest, generate_batch
        from gpu_core.runner.loading import load_model, load_tokenizer
        from toploc_audit.commands.generate import prompt_ids, signed_entry, submit_entry

        tokenizer = load_tokenizer(folder)
        tokenizer_fingerprint = fingerprint_tokenizer(folder)
        bf16 = load_model(folder, "bfloat16")
        deployment = Deployment.load(settings.deployment_file)
        domain = Domain.of(deployment.chain_id, deployment.address)
        spec = DecodeSpec(max_new_tokens=self.tokens)  # greedy, ending at the end-of-sequence token

        entries: list[dict[str, Any]] = []

        def record(generation: Any, kind: str) -> Record:
            r = Record.from_generation(
                generation, self.provider.address, folder.name, tokenizer_fingerprint, f"demo-{len(entries)}"
            )
            entries.append({"kind": kind, "record": r})
            return r

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        started = time.monotonic()
        with Progress(*columns, console=self.console, transient=True) as progress:

            def generate(loaded: Any, texts: list[str], label: str) -> list[Any]:
                task = progress.add_task(f"generating: {label}", total=self.tokens + 1)
                requests = [GenerationRequest(prompt_ids(tokenizer, t), spec) for t in texts]
                out = generate_batch(
                    loaded,
                    requests,
                    tokenizer=tokenizer,
                    progress=lambda n, _: progress.update(task, completed=n),
                )
                progress.remove_task(task)
                return out

            honest_generations = generate(bf16, list(PROMPTS[:2]), "two honest replies (one batch)")
            honest = record(honest_generations[0], KINDS[0][0])
            record(honest_generations[1], KINDS[1][0])
            [other] = generate(tampering.perturb_weights(bf16, 0.01), [PROMPTS[2]], KINDS[2][0])
            record(other, KINDS[2][0])
            output = list(honest.output_tokens)
            output[len(output) // 2] = (output[len(output) // 2] + 1) % 49_152
            entries.append(
                {
                    "kind": KINDS[3][0],
                    "record": replace(honest, output_tokens=tuple(output), request_id="demo-3"),
                }
            )
            fp32 = tampering.with_claimed_dtype(load_model(folder, "float32"), "bfloat16")
            [fp32_generation] = generate(fp32, [PROMPTS[3]], KINDS[4][0])
            record(fp32_generation, KINDS[4][0])
            # The prefill attack: text written without the model, then one prefill for the proofs.
            cheap = tokenizer(CHEAP_ANSWER)["input_ids"][: self.tokens]
            # The honest reply's spec, resolved (the model's end-of-sequence ids), claimed for the cheap text.
            cheap_spec = replace(honest_generations[0].spec, max_new_tokens=len(cheap))
            record(
                tampering.prove_by_prefill(
                    bf16, prompt_ids(tokenizer, PROMPTS[4]), cheap, cheap_spec, "length"
                ),
                KINDS[5][0],
            )
        self.console.print(
            f"[green]✓[/] generated {len(entries)} records of up to {self.tokens} tokens with proofs "
            f"[dim]({time.monotonic() - started:.1f} s)[/]"
        )
        for entry in entries:
            answer = submit_entry(
                recorder, signed_entry(entry["record"], self.provider.key, domain), self.api_key
            )
            entry["index"] = int(answer["receipt"]["logIndex"])
        text = tokenizer.decode(list(honest.output_tokens), skip_special_tokens=True)
        self.console.print(
            f"  logged through the API; the honest reply to {PROMPTS[0]!r}: [italic]{text!r}[/]"
        )
        return entries

    def anchor(self, settings: Settings) -> None:
        from anchor.anchoring import Anchorer, AuditContract, LoopConfig
        from anchor.db import open_database

        with self.step("log checkpoint anchored on chain (RFC 9162 consistency checked by the contract)"):
            contract = AuditContract(self.node.web3(), self._address(settings), self.operator)
            Anchorer(
                open_database(settings.database_url), contract, LoopConfig(1, 0, 1, poll_seconds=0.05)
            ).run(once=True)

    def _address(self, settings: Settings) -> str:
        from anchor.chain.deployment import Deployment

        return Deployment.load(settings.deployment_file).address

    # -- disputes -----------------------------------------------------------------------------------

    def disputes(self, settings: Settings, client: Any, entries: list[dict[str, Any]]) -> dict[int, int]:
        from anchor.db import open_database
        from verifier.disputes import file_dispute, plan_dispute

        challenger = client.as_account(self.challenger)
        sessions = open_database(settings.database_url)
        disputes: dict[int, int] = {}
        with self.step("disputes opened: one honest record and every dishonest one"):
            for entry in entries[1:]:
                with sessions() as s:
                    plan = plan_dispute(s, challenger, str(entry["index"]))
                filed = file_dispute(challenger, plan)
                disputes[entry["index"]] = filed.dispute_id
        return disputes

    def decide(self, settings: Settings, client: Any, disputes: dict[int, int]) -> None:
        from sqlalchemy import select

        from anchor.db import open_database
        from anchor.db.models import Dispute
        from verifier.models import FINAL, Validation

        sessions = open_database(settings.database_url)
        assert self.processes is not None
        started = time.monotonic()
        ids = set(disputes.values())
        advanced = False
        with self.console.status("validators recomputing TOPLOC and voting") as status:

            def progress() -> bool:
                nonlocal advanced
                with sessions() as s:
                    rows = s.scalars(select(Validation)).all()
                    outcomes = [d.outcome for d in s.scalars(select(Dispute)) if d.dispute_id in ids]
                done = sum(v.status in FINAL for v in rows)
                resolved = sum(outcome != 0 for outcome in outcomes)
                status.update(
                    f"validators recomputing TOPLOC and voting: {done}/{3 * len(ids)} verdicts, "
                    f"{resolved}/{len(ids)} disputes resolved"
                )
                if done == 3 * len(ids) and resolved < len(ids) and not advanced:
                    # Every validator finished but a dispute waits for a deadline (a member silent):
                    # move chain time past its phases, so the watcher queues its resolution.
                    p = client.parameters()
                    self.node.increase_time(p.commitPeriod + p.revealPeriod + p.appealPeriod + 1)
                    advanced = True
                return resolved == len(ids)

            _wait(progress, self.timeout, "the disputes to resolve", self.processes.check)
        self.console.print(f"[green]✓[/] every dispute resolved [dim]({time.monotonic() - started:.1f} s)[/]")

    # -- the end --------------------------------------------------------------------------------------

    def accounts(self) -> list[tuple[str, str]]:
        return [
            ("provider", self.provider.address),
            ("challenger", self.challenger.address),
            *((f"validator {i + 1}", v.address) for i, v in enumerate(self.validators)),
        ]

    def balances(self, client: Any) -> dict[str, tuple[int, int]]:
        return {a: (client.stake_of(a).active, client.credits(a)) for _, a in self.accounts()}

    def report(
        self,
        settings: Settings,
        client: Any,
        entries: list[dict[str, Any]],
        disputes: dict[int, int],
        before: dict[str, tuple[int, int]],
        after: dict[str, tuple[int, int]],
    ) -> None:
        from rich.table import Table
        from sqlalchemy import select

        from anchor.db import open_database
        from anchor.db.models import Slash
        from anchor.trail import detail, find
        from toploc_audit.commands.trail import timeline
        from verifier.models import Validation

        names = {a: n for n, a in self.accounts()}
        sessions = open_database(settings.database_url)
        table = Table(title="toploc-audit demo")
        for column in (
            "entry",
            "record",
            "verdicts (fraud/honest)",
            "outcome",
            "provider stake",
            "challenger",
        ):
            table.add_column(column)
        for entry in entries:
            with sessions() as s:
                trail = detail(s, find(s, str(entry["index"])))
                dispute_id = disputes.get(entry["index"])
                validations = (
                    []
                    if dispute_id is None
                    else s.scalars(
                        select(Validation).where(Validation.dispute_id == dispute_id).order_by(Validation.id)
                    ).all()
                )
                slashes = (
                    []
                    if dispute_id is None
                    else s.scalars(select(Slash).where(Slash.dispute_id == dispute_id)).all()
                )
            self.console.rule(f"entry {entry['index']}: {entry['kind']}")
            for line in timeline(trail):
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            for v in validations:
                verdict = "abstained" if v.fraud is None else ("FRAUD" if v.fraud else "honest")
                reasons = v.reason or ""
                if v.report:
                    reasons = _summary(json.loads(v.report))
                self.console.print(
                    f"  {names.get(v.validator, v.validator)}: {verdict} ({reasons})", markup=False
                )
            for slash in slashes:
                self.console.print(
                    f"  slashed {slash.amount / ETHER:g} ETH from {names.get(slash.account, slash.account)}",
                    markup=False,
                )
            row = {"fraud": "-", "outcome": "not disputed", "stake": "", "challenger": ""}
            if dispute_id is not None:
                d = client.dispute(dispute_id)
                last = client.round(dispute_id, d.rounds - 1)
                slashed = sum(x.amount for x in slashes if x.account == self.provider.address)
                challenger_credit = sum(
                    int(p["amount"])
                    for p in trail["disputes"][-1]["payouts"]
                    if p["account"] == self.challenger.address
                )
                row = {
                    "fraud": f"{last.fraud_votes}/{last.honest_votes}",
                    "outcome": d.outcome.name.lower().replace("_", " "),
                    "stake": f"-{slashed / ETHER:g} ETH" if slashed else "unchanged",
                    "challenger": f"+{challenger_credit / ETHER:g} ETH credit"
                    if challenger_credit
                    else "lost the bond",
                }
            table.add_row(
                str(entry["index"]),
                entry["kind"],
                row["fraud"],
                row["outcome"],
                row["stake"],
                row["challenger"],
            )
        self.console.rule("balances that moved (stake and withdrawable credit, ETH)")
        for name, address in self.accounts():
            (stake0, credit0), (stake1, credit1) = before[address], after[address]
            self.console.print(
                f"  {name:12s} {address}  stake {stake0 / ETHER:g} -> {stake1 / ETHER:g}"
                f"   credit {credit0 / ETHER:g} -> {credit1 / ETHER:.6g}",
                markup=False,
            )
        totals = client.totals()
        self.console.print(
            f"  contract balance {totals.balance / ETHER:g} ETH = stakes + bonds + credits + reserve: "
            f"{totals.solvent}"
        )
        self.console.print(table)
        self.console.print(f"state, logs and the SQLite database are in {self.home}")


def _summary(report: dict[str, Any]) -> str:
    """A vote's report in one line: its first two reasons (and how many more), or what passed."""
    reasons = report["reasons"]
    if not reasons:
        return f"every chunk within the thresholds, every token the sampler's choice ({report['tokenCheck']})"
    more = f"; and {len(reasons) - 2} more" if len(reasons) > 2 else ""
    return "; ".join(reasons[:2]) + more


def _quiet_transformers() -> None:
    """No per-file loading bars from transformers: this command shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
