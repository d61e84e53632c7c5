"""Purpose binding and decisions: the procedure catalogue, legal basis versus consent.

Nothing is decided here yet: until per-field decisions land, the gateway serves every
field it has a source for, to any caller that can reach it. Deploy it only where the
network restricts who can call it (the demo binds to loopback).
"""

__all__: list[str] = []
