"""Runs every Slither detector over the contracts; prints the findings as one JSON array.

Run by Slither's own environment (.venv/slither, requirements-slither.lock), not the project's:
    .venv/slither/bin/python contracts/slither_check.py INPUT.json contracts/solc.js

INPUT.json is the project's Standard JSON input (anchor.chain.solc: sources inline, viaIR and the
pinned settings), so Slither analyses exactly what is deployed. Each finding: check, impact,
confidence, the first line of its description, and the source files it names.
"""

from __future__ import annotations

import inspect
import json
import sys


def main(input_path: str, solc: str) -> None:
    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    with open(input_path, encoding="utf-8") as f:
        standard = json.load(f)
    standard["settings"].pop("outputSelection", None)  # crytic-compile asks for what it needs
    slither = Slither(CryticCompile(SolcStandardJson(standard), solc=solc))
    for _, detector in inspect.getmembers(all_detectors, inspect.isclass):
        if issubclass(detector, AbstractDetector):
            slither.register_detector(detector)
    findings = []
    for results in slither.run_detectors():
        for result in results:
            files = sorted(
                {
                    element["source_mapping"]["filename_relative"]
                    for element in result.get("elements", [])
                    if element.get("source_mapping")
                }
            )
            findings.append(
                {
                    "check": result["check"],
                    "impact": result["impact"],
                    "confidence": result["confidence"],
                    "description": result["description"].strip().splitlines()[0],
                    "files": files,
                }
            )
    json.dump(findings, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
