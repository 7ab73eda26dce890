"""edgernn's version, in a module of its own: bundles record it, and the modules below the package root read it
here (the root imports the layers, never the other way).
"""

__version__ = "0.1.0"
