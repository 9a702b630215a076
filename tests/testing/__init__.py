"""Shared test helpers: the dtype-aware oracle and input builders."""
