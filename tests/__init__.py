"""holysse test suite."""
