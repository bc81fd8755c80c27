from cmdb.cli import main

main()
