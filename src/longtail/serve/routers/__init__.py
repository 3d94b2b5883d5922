"""One router per resource: recommendations, items, users, events, operations."""
