"""Parses a Prometheus text exposition (stdin) with prometheus_client's parser and prints
{"families": {name: type}, "samples": [[name, labels, value], ...]} as JSON. Exits non-zero
when the text does not parse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
families = {}
samples = []
for fam in text_string_to_metric_families(text):
    families[fam.name] = fam.type
    for s in fam.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"families": families, "samples": samples}))
