"""Airflow glue: Assets, DAG defaults, the night of a run, task bodies, notifiers, the UI plugin."""
