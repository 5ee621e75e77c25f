"""PrefEval's world (Zhao et al., ICLR 2025): the benchmark's data and filler, the long-context layout,
the classification options and the judges. The harness that runs methods over it (runner, methods,
reports) lives in :mod:`persona_lab.eval.prefeval`."""
