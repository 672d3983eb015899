"""The search report: load a workdir's records, analyse them, plot, write a page.

``load`` reads (records, config, zoo latencies), ``analysis`` computes
(Pareto fronts, best-so-far curves, lineage, gate savings), ``plots`` draws,
and ``page`` writes ``report.html`` with the plots embedded and as PNGs.
"""

from vsearch.report.page import Report, write_report
from vsearch.report.plots import register_method_figure

__all__ = ["Report", "register_method_figure", "write_report"]
