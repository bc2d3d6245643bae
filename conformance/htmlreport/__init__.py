"""The HTML run report: one self-contained page per run (matrix, filters, a timeline per cell),
the HTML side-by-side comparison, and the compact text timeline of a failing cell.

Downstream of everything else: it reads recorded results and histories, never judges.
"""
