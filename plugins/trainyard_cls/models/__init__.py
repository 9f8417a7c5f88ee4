"""Classification models: a classifier around a backbone chosen by name."""
