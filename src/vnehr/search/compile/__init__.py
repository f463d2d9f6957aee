"""The search IR -> SQL over `resources` and the index tables (one statement per search).

One module per parameter type turns a leaf into a condition on one index row (aliased
`x`); sql.py nests those into conditions on the resource row and builds the statement.
"""
