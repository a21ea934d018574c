"""The sandbox: synthetic England, the demo, time travel and the bundled model's builder.

Never imported by a stage or a DAG (a test checks): production code cannot depend on
data it generated itself.
"""
