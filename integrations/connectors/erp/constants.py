"""ERP vocabulary: the documents the generic REST contract knows (``client.py``)."""

JOURNAL_ENTRIES = "journal_entries"
CREDIT_MEMOS = "credit_memos"
TRIAL_BALANCE = "trial_balance"
