"""Notebook views of blueprints and runs: graph model, layout, palette, static SVG, anywidgets.

The pure-Python half lives here and imports nothing heavier than networkx:

- ``palette``: the one status palette (fill, stroke, text colour, icon, label) and the task type
  -> node shape table, shared by the anywidget ESM views, the static SVG and matplotlib plots;
- ``graph``: ``blueprint_graph`` turns a workflow definition (and optionally an execution) into a
  ``networkx.DiGraph`` (what ``Blueprint.to_networkx()`` returns), and ``execution_status`` maps a
  run's tasks onto its nodes;
- ``layout``: a deterministic layered layout of that graph, as the JSON the ESM draws;
- ``svg``: the same layout as a standalone SVG, the static fallback in the widgets' mime bundles.

Nothing here imports anywidget or pandas at import time, so ``import conductor_lab.widgets`` is
cheap and works without the ``lab`` extra.
"""
