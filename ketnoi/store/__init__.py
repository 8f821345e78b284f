"""Resource persistence behind one interface (``base.Store``), with SQLite and PostgreSQL backends."""
