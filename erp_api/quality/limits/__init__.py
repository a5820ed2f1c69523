"""Phase I control limits per spec: set by hand or computed from a baseline, with history."""
