"""The Ray backend: ``init(backend="ray")`` runs every actor and remote function on Ray.

Only ``objects`` is imported with pyactors (it recognises Ray's refs and handles without
importing Ray); the rest, and Ray itself, when the backend is chosen.
"""
