"Alembic migrations of the line twin's database (`defect_twin.twin.Store` runs them on open)."
