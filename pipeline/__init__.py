"""The streaming half of ecgwatch: Kafka topics, the Faust worker, codecs, alerts, metrics."""
