"""Accounts: who may sign in and with which role (admins only)."""
import review.ui.accounts

review.ui.accounts.page()
