from alfred_dsl.cli import main

main()
