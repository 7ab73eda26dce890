"""``edgernn stream`` as a service: ``readers`` (where lines come from, and where a restart may resume),
``sinks`` (where predictions go, exactly once), ``service`` (the loop, the state file, signals, exit codes).
TensorFlow-free: it runs on the device."""
