"""Training runs on disk: starting and cancelling them, their records, results, retention and the leaderboard."""
