from harness import cli

cli.main()
