"""One module per subcommand (group); cli.py imports each only when it is used."""
