"""Plain-Python references that the vectorised JAX code is tested against (slow, exact, readable)."""
