"""Statistics for the leader (docs/statistics.md): figures as SQL aggregates, drawn as SVG charts beside
their tables, each with a CSV of exactly its table."""
