"""The only package that imports Ray: the session, and the Ray Data wiring of the stages' callables."""
