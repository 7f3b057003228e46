"""The `toploc-audit` command line (see cli.py); the libraries are gpu_core, anchor and verifier."""
