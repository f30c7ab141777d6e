#!/usr/bin/env python3
"""Tests of scripts/capacity.py on a reduced size (a few seconds): conservation laws, ratios in
[0, 1], monotone storage, and the simulated caches against closed forms. Run by scripts/test.sh:

    python3 scripts/test_capacity.py
"""

import math
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capacity as cap  # noqa: E402


def small(**over):
    p = dict(cap.P)
    p.update(over)
    return p


class Laws(unittest.TestCase):
    """The traffic law converges; the old plan's does not."""

    def test_decay_converges_and_old_model_grows(self):
        m30, m365 = cap.traffic_multiple(29), cap.traffic_multiple(364)
        self.assertLess(m30, m365)
        # (1 + d) ** -1.5 sums to zeta(1.5) = 2.612 at most
        self.assertLess(m365, 2.6124)
        self.assertAlmostEqual(cap.old_model_multiple(364), 72.4, places=6)
        self.assertGreater(cap.old_model_multiple(364) / cap.old_model_multiple(29), 10)

    def test_pareto_weights_have_mean_one(self):
        w = cap.pareto_weights(200_000, cap.P, random.Random(3))
        self.assertAlmostEqual(sum(w) / len(w), 1.0, delta=0.05)
        self.assertLessEqual(max(w) / min(w), cap.P["zipf_max_weight"] * 1.0001)

    def test_variant_mix_is_a_distribution_on_the_ladder(self):
        mix = cap.variant_mix()
        self.assertAlmostEqual(sum(m[0] for m in mix), 1.0, places=9)
        self.assertTrue(all(m[1] in cap.P["ladder"] for m in mix))
        self.assertEqual(len({(m[1], m[2], m[3]) for m in mix}), len(mix))

    def test_tiered_prices(self):
        tiers = cap.P["cdn_egress_tiers"]
        self.assertAlmostEqual(cap.tiered(10e3, tiers), 850.0)
        self.assertAlmostEqual(cap.tiered(50e3, tiers), 850.0 + 40e3 * 0.080)
        self.assertAlmostEqual(cap.tiered(6e6, tiers) - cap.tiered(5e6, tiers), (6e6 - 5.12e6) * 0.020 + 0.12e6 * 0.025)
        self.assertEqual(cap.tiered(0, tiers), 0)


class CachesAgainstClosedForms(unittest.TestCase):
    def test_lru_uniform_popularity_is_capacity_over_catalogue(self):
        rng = random.Random(7)
        n, c = 2_000, 500
        lru = cap.LRU(c)
        for _ in range(n * 5):  # warm up
            lru.access(rng.randrange(n), 1)
        lru.hits = lru.misses = 0
        for _ in range(200_000):
            lru.access(rng.randrange(n), 1)
        hit = lru.hits / (lru.hits + lru.misses)
        self.assertAlmostEqual(hit, cap.lru_uniform_hit_ratio(c, n), delta=0.01)

    def test_lru_zipf_matches_che(self):
        rng = random.Random(11)
        n, c = 5_000, 400
        z = [1 / (k + 1) ** 0.8 for k in range(n)]
        tot = sum(z)
        probs = [x / tot for x in z]
        cum = list(cap._cumsum(probs))
        lru = cap.LRU(c)
        for i in range(250_000):
            if i == 50_000:
                lru.hits = lru.misses = 0
            k = min(n - 1, cap.bisect.bisect_left(cum, rng.random() * cum[-1]))
            lru.access(k, 1)
        hit = lru.hits / (lru.hits + lru.misses)
        self.assertAlmostEqual(hit, cap.che_hit_ratio(probs, c), delta=0.015)

    def test_byte_weighted_lru_never_exceeds_capacity(self):
        lru = cap.LRU(1000)
        rng = random.Random(5)
        for _ in range(20_000):
            lru.access(rng.randrange(300), rng.choice((10, 100, 400)))
            self.assertLessEqual(lru.used, 1000)
        self.assertFalse(lru.access("big", 1001))
        self.assertNotIn("big", lru.d)


def truncated_compulsory(p, days, probs):
    """Closed form for the sim's window: cohort c sees only its first days - c days of views."""
    misses = reqs = 0.0
    for c in range(days):
        v = sum(cap.views_on_day(a, p) for a in range(days - c))
        h = cap.compulsory_hit_ratio(v, probs, p, grid=200)
        misses += (1 - h) * v
        reqs += v
    return 1 - misses / reqs


class Simulation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = small()
        cls.sim = cap.simulate(1e-7, 75, seed=2, p=cls.p)
        cls.plan = cap.plan(cls.sim, cls.p)

    def test_conservation_at_every_layer(self):
        for c in self.sim["months"]:
            self.assertEqual(c["requests"], c["edge_hits"] + c["shield_requests"])
            self.assertEqual(c["shield_requests"], c["shield_hits"] + c["origin_requests"])
            self.assertEqual(c["origin_requests"], c["origin_hits"] + c["transforms"])
            self.assertEqual(c["transforms"], c["transforms_avif"] + c["transforms_webp"] + c["transforms_legacy"])
            self.assertLessEqual(c["cold_fetches"], c["transforms"])
            self.assertGreater(c["requests"], 0)

    def test_ratios_in_unit_interval_and_rates_consistent(self):
        for r in self.plan["rows"]:
            for k in ("edge_hit", "shield_hit", "origin_hit", "overall_hit"):
                self.assertGreaterEqual(r[k], 0.0, k)
                self.assertLessEqual(r[k], 1.0, k)
            self.assertAlmostEqual(r["views_per_s_peak"], r["views_per_s"] * self.p["diurnal_peak"])
            self.assertLessEqual(r["transforms_per_s"], r["origin_per_s"] + 1e-9)
            self.assertLessEqual(r["origin_per_s"], r["views_per_s"])
            self.assertGreaterEqual(r["pods_peak"]["qauto"], r["pods_peak"]["fixed"])

    def test_storage_grows_every_month_by_the_uploads(self):
        rows = self.plan["rows"]
        for a, b in zip(rows, rows[1:]):
            self.assertGreater(b["stored_pb"], a["stored_pb"])
            self.assertGreaterEqual(b["cost"]["alt_storage_all_standard"], a["cost"]["alt_storage_all_standard"])
            self.assertLessEqual(b["cost"]["storage_tiered"], b["cost"]["alt_storage_all_standard"])
        days = sum(r["days"] for r in rows)
        expect = self.p["uploads_per_hour"] * 24 * days * self.p["original_bytes"] / 1e15
        self.assertAlmostEqual(rows[-1]["stored_pb"], expect, delta=expect * 1e-9)

    def test_request_count_follows_the_law(self):
        days = self.sim["days"]
        expect = self.sim["images_per_day"] * sum(
            sum(cap.views_on_day(a, self.p) for a in range(d + 1)) for d in range(days))
        got = sum(c["requests"] for c in self.sim["months"])
        self.assertLess(abs(got - expect), 2)

    def test_a_shield_takes_the_origin_caches_hits(self):
        # origin caches hit on repeats the edge missed; a shield in front absorbs most of them
        p = small(shield_cache_bytes=20e12, pod_variant_cache_bytes=5e12)
        hit = {}
        for shield in (True, False):
            sim = cap.simulate(1e-6, 20, seed=4, p=p, shield=shield, pods=4)
            c = {k: sum(m[k] for m in sim["months"]) for k in sim["months"][0]}
            hit[shield] = c["origin_hits"] / c["origin_requests"]
        self.assertGreater(hit[False], 0.2)
        self.assertLess(hit[True], hit[False] / 5)

    def test_infinite_caches_meet_the_compulsory_bound(self):
        days = 20
        p = small(pop_cache_bytes=math.inf, shield_cache_bytes=math.inf)
        sim = cap.simulate(1e-6, days, seed=9, p=p)
        c = {k: sum(m[k] for m in sim["months"]) for k in sim["months"][0]}
        probs = [m[0] for m in cap.variant_mix(p)]
        shares = cap.pop_shares(p["pops"])
        per_pop = [q * s for q in probs for s in shares]
        edge = c["edge_hits"] / c["requests"]
        overall = 1 - c["transforms"] / c["requests"]
        self.assertAlmostEqual(edge, truncated_compulsory(p, days, per_pop), delta=0.03)
        self.assertAlmostEqual(overall, truncated_compulsory(p, days, probs), delta=0.03)
        # a finite cache can only do worse than the bound
        fin = cap.simulate(1e-6, days, seed=9, p=small(shield_cache_bytes=1e12))
        f = {k: sum(m[k] for m in fin["months"]) for k in fin["months"][0]}
        self.assertGreater(f["transforms"], c["transforms"])

    def test_report_names_its_command(self):
        import io

        buf = io.StringIO()
        cap.report(self.sim, self.plan, cap.closed_forms(self.p, days=75), self.p, out=buf)
        self.assertTrue(buf.getvalue().startswith("# python3 scripts/capacity.py --scale 1e-07 --days 75 --seed 2"))
        self.assertIn("| year |", buf.getvalue())


if __name__ == "__main__":
    unittest.main(verbosity=1)
