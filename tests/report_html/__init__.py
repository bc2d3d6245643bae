"""Tests of the HTML run report (conformance/htmlreport)."""
