"""Lunch accounts: ledger, cards, canteen rules, the till service and the reader daemon."""
