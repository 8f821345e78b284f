"""Terminology for search: ValueSet expansion, CodeSystem subsumption, and the token modifiers
``:in``, ``:not-in``, ``:above``, ``:below`` rewritten into plain token criteria (see docs/search.md)."""
