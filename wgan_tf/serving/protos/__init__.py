"""TF Serving's configuration protos that tensorflow-serving-api does not ship (generated: generate.sh)."""
