"""Helpers shared by the test tiers: actions, hostile inputs, servers, bounds (no tests here)."""
