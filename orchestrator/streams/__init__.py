"""Live streams between node runs (DESIGN 3.14): channels, transports and the
runner's side of generator nodes and stream inputs."""
