"""The engine itself: builds the actor tree from storage, takes every command (setup changes,
flatten, lock, limits) and the supervisor that restarts a failed actor; the topology rules."""
