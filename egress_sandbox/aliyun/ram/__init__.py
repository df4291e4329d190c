"""RAM 2015-05-01: the roles of the account (GetRole)."""
