"""Control charts of a series: reads, the engine's charts, JSON and SVG answers."""
