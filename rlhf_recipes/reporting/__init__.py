"""metrics.json, report.md/html and plots, from a run directory's saved artifacts."""
