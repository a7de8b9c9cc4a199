from alfred_dsl.cli import entry

entry()
