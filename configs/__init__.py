"""The shipped configs (furuta.yaml, zoo.yaml) and the typed-config framework that reads them (schema)."""
