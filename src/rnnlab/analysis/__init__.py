"""Looking inside recurrent networks: gradient flow through time, gate activity, long-range synthetic tasks."""
