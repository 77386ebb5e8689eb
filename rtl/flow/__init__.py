"""The match-action stage: flow table, ACL, RSS, meters and actions.

* :mod:`amnic.flow.rss` — Toeplitz hash and RSS indirection;
* :mod:`amnic.flow.hash` / :mod:`amnic.flow.table` — the exact-match cuckoo flow table;
* :mod:`amnic.flow.acl` — the priority-ordered ternary rule stage;
* :mod:`amnic.flow.meter` — token-bucket policers.
"""
