"""The Anvil helper: starts on a free port, answers, always stops, keeps its state across restarts."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from anchor.chain.anvil import DEV_CHAIN_ID, anvil_node, dev_account, rpc_call, start_anvil
from anchor.chain.errors import ChainError


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_starts_answers_and_stops() -> None:
    with anvil_node(accounts=3) as node:
        assert int(node.rpc("eth_chainId"), 16) == DEV_CHAIN_ID
        accounts = node.rpc("eth_accounts")
        assert [a.lower() for a in accounts] == [dev_account(i).address.lower() for i in range(3)]
        assert _port_open(node.port)
    assert node.process.poll() is not None
    assert not _port_open(node.port)


def test_stops_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), anvil_node() as node:
        raise RuntimeError("boom")
    assert node.process.poll() is not None


def test_a_busy_port_is_a_clear_error() -> None:
    with anvil_node() as node:
        with pytest.raises(ChainError) as err:
            start_anvil(port=node.port).stop()  # stopped, should it ever start
        assert "Address already in use" in str(err.value)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with anvil_node(state_file=state, log_path=tmp_path / "anvil.log") as node:
        node.mine(5)
        node.increase_time(1000)
        block = int(node.rpc("eth_blockNumber"), 16)
    assert state.is_file()
    with anvil_node(state_file=state) as node:
        assert int(node.rpc("eth_blockNumber"), 16) == block


def test_time_and_snapshots() -> None:
    with anvil_node() as node:
        start = node.timestamp()
        snapshot = node.snapshot()
        node.increase_time(3600)
        assert node.timestamp() >= start + 3600
        node.revert(snapshot)
        assert node.timestamp() == start
        with pytest.raises(ChainError):
            node.revert(snapshot)  # a snapshot is used up by its revert


def test_rpc_errors_are_chain_errors() -> None:
    with anvil_node() as node, pytest.raises(ChainError) as err:
        rpc_call(node.url, "no_such_method")
    assert "no_such_method failed" in str(err.value)


def test_a_block_time_mines_on_schedule_and_still_mines_each_transaction_at_once() -> None:
    """`chain up`'s mode: --block-time alone would hold every transaction until the next tick."""
    with anvil_node(block_time=3600) as node:  # no scheduled block can come during the test
        w3 = node.web3()
        before = w3.eth.block_number
        sender = dev_account(0)
        tx = {"to": dev_account(1).address, "value": 1, "gas": 21_000, "chainId": DEV_CHAIN_ID,
              "nonce": 0, "gasPrice": w3.eth.gas_price}  # fmt: skip
        tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        # Mined on arrival (within moments), not at the next tick an hour away.
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1 and receipt["blockNumber"] > before
    with anvil_node(block_time=0.2) as node:
        deadline = time.monotonic() + 60
        while int(node.rpc("eth_blockNumber"), 16) < 3:  # no transaction is sent: the schedule mines
            assert time.monotonic() < deadline, "no scheduled blocks within 60 s"
            time.sleep(0.05)  # polling another process, with a deadline
