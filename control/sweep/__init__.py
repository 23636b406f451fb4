"""``sim sweep``: many ordinary training runs on Ray (grid x seeds, or an Optuna search), aggregated over seeds."""
