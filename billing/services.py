"""Billing writes. Credits (accounts, ledger, reservations) are built on this module."""
