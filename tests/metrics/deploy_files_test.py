#!/usr/bin/python3
"""The operator files over the metrics (docs/operations.md):

- deploy/prometheus/alerts.yml passes `promtool check rules`, and its unit
  tests (alerts_test.yml, `promtool test rules`) fire and stay quiet as
  expected;
- every query of the Grafana dashboard (deploy/grafana/spawn-gateway.json)
  is valid PromQL (checked by promtool as recording rules, with Grafana's
  variables replaced), and its variable queries too;
- every metric named by the dashboard and by the alert rules is one a live
  gateway exports: a gateway with --http, a host and a few calls, its
  /metrics families read back (histogram series by their family)."""
import json
import os
import re
import subprocess
import tempfile
import unittest

import mgw

from google.protobuf import wrappers_pb2  # noqa: E402
from http_test import SYS, start_host
from spawn_client import SpawnClient  # noqa: E402

ALERTS = os.path.join(mgw.ROOT, "deploy", "prometheus", "alerts.yml")
DASH = os.path.join(mgw.ROOT, "deploy", "grafana", "spawn-gateway.json")
NAME = re.compile(r"\b((?:spawn|process)_[a-z0-9_]+)\b")


def dashboard_exprs():
    with open(DASH) as f:
        d = json.load(f)
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for v in d["templating"]["list"]:
        if v.get("type") == "query":
            exprs.append(v["definition"])
    return d, exprs


def alert_exprs():
    out = []
    with open(ALERTS) as f:
        text = f.read()
    # The rule file is YAML; its exprs are the only PromQL in it.
    for m in re.finditer(r"expr: (\|\n((?:\s{10}.*\n)+)|(.*))", text):
        out.append(m.group(2) or m.group(3))
    return out


class DeployFilesTest(unittest.TestCase):
    def test_alert_rules_check_and_unit_tests(self):
        r = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)
        r = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"],
                           cwd=os.path.dirname(os.path.abspath(__file__)),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_dashboard_queries_are_promql(self):
        d, exprs = dashboard_exprs()
        self.assertGreaterEqual(len(d["panels"]), 10)
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dash_rules.yml")
            with open(path, "w") as f:
                f.write("groups:\n  - name: dashboard\n    rules:\n")
                for i, e in enumerate(exprs):
                    if e.startswith("label_values("):  # a Grafana function, not PromQL
                        e = e[len("label_values("):].split(",")[0]
                    e = (e.replace("$__rate_interval", "1m").replace("$instance", ".*"))
                    f.write("      - record: dash:q%d\n        expr: %s\n" % (i, json.dumps(e)))
            r = subprocess.run(["promtool", "check", "rules", path], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_metric_named_is_exported(self):
        _, dash = dashboard_exprs()
        alerts = alert_exprs()
        self.assertGreaterEqual(len(alerts), 10)
        named = {n for e in dash + alerts for n in NAME.findall(e)}
        self.assertGreaterEqual(len(named), 20)
        with tempfile.TemporaryDirectory() as d:
            gw = mgw.Gateway(d)
            host = start_host(gw)
            client = SpawnClient(gw.addr)
            try:
                client.invoke(SYS, "counter", "Add", wrappers_pb2.Int64Value(value=1))
                text = gw.metrics()
            finally:
                client.close()
                host.stop()
                self.assertEqual(gw.stop(), 0)
        fams = mgw.families(text)
        types = {line.split()[2]: line.split()[3] for line in text.splitlines()
                 if line.startswith("# TYPE ")}
        missing = []
        for n in sorted(named):
            if n in fams:
                continue
            base = re.sub(r"_(bucket|sum|count)$", "", n)
            if base != n and types.get(base) == "histogram":
                continue
            missing.append(n)
        self.assertEqual(missing, [], "named by the dashboard or alerts, not exported")


if __name__ == "__main__":
    unittest.main()
