"""The side-by-side demo: arms on one world, evaluated with the real engine, and its report."""
