"""The example app: users, login, a sessions page, logout everywhere."""
