"""The AI phone (issue 28): the inquiry FAQ, matching a caller's question to it, and the decision to answer or hand off to staff."""
