"""absl entry points. Each is short and holds no logic of its own."""
