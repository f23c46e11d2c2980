"""The lead API: "why this score, why this rep" on every worker, and `leadflow explain`."""
