"""The python agents the example workflows call (``call = "myteam.agents:implement"``).

A ``kind = python`` stage imports ``module:function`` with the stage's folder first on
``sys.path`` (here: ``examples/``), calls the function with the stage's inputs and records
the dict it returns as the stage's outputs. These stand in for your team's real agents.
"""
