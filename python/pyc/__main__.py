from pyc.cli.main import main

main()
