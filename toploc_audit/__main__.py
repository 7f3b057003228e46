from toploc_audit.cli import main

main()
