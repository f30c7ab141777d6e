#!/usr/bin/env python3
"""imago's capacity plan as a program: a traffic simulator over a year of uploads and views.

    python3 scripts/capacity.py                 # the plan in docs/design.md §9-§11 (scale 1e-5, ~1-2 min)
    python3 scripts/capacity.py --scale 1e-7 --days 60   # a quick look (what scripts/test_capacity.py runs)
    python3 scripts/capacity.py --json          # every figure as JSON

Method. The catalogue is scaled down by `--scale` (uploads per day and every cache capacity are
multiplied by it) while each image keeps its full-size behaviour: the same views over its life,
the same popularity law, the same variant and PoP mix. Hit ratios of LRU caches depend on capacity
relative to the catalogue and on the per-object request pattern, both of which this scaling
keeps (docs/design.md §9 compares two scales). Requests are sampled one by one, in day
order, through byte-weighted LRU caches: one per PoP (the edge), one origin shield, and the
origin's memory caches, consistent-hashed over the pods. Counts are then divided by the scale
and turned into rates, cores, pods, bytes and dollars with the constants below.

Closed forms are printed next to the simulation where one exists: the compulsory-miss bound of an
infinite cache (per PoP and global); scripts/test_capacity.py also checks the LRU against C/N
(uniform popularity) and Che's approximation (Zipf). Python 3 standard library only.
"""

import argparse
import bisect
import json
import math
import random
import sys
from collections import OrderedDict

# --------------------------------------------------------------------------------------------
# Inputs. Every number the plan uses is here, with where it comes from. "assumption" means a
# stated planning choice, not a measurement; change it and rerun.
# --------------------------------------------------------------------------------------------
P = {
    # -- traffic --------------------------------------------------------------------------
    "uploads_per_hour": 5_000_000,  # the spec
    "diurnal_peak": 2.5,  # assumption: busiest hour / daily mean hour, uploads and views alike
    #   (one continent's audience: 2.5-3; a worldwide one flattens it towards 1.5)
    "views_day_one": 10.0,  # assumption (the old plan): views of an image on its first day
    "decay_exponent": 1.5,  # assumption: views on day d (d = 0 first) = 10 * (1 + d) ** -1.5;
    #   it converges: a year of an image is ~25 views, steady traffic ~2.5x day-one traffic
    "zipf_exponent": 0.8,  # assumption: rank-popularity exponent over images (web/UGC: 0.6-0.9),
    #   drawn as iid Pareto weights of index 1/0.8 (the same law at any catalogue size)
    "zipf_max_weight": 1000.0,  # assumption: the most viewed image gets <= 1000x the least viewed
    # -- device mix -> variants (srcset widths snap up to the server's width ladder) ---------
    "ladder": [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840],  # src/config/raw.rs
    "devices": {  # assumption: share, {DPR: share}, CSS width of each slot (thumb, feed, detail)
        "mobile": (0.70, {2: 0.45, 3: 0.55}, {"thumb": 120, "feed": 390, "detail": 390}),
        "desktop": (0.30, {1: 0.55, 2: 0.45}, {"thumb": 200, "feed": 600, "detail": 1200}),
    },
    "slots": {"thumb": 0.25, "feed": 0.60, "detail": 0.15},  # assumption: which rendition a view loads
    "formats": {"avif": 0.85, "webp": 0.10, "legacy": 0.05},  # assumption (caniuse 2025: AVIF ~93 %)
    "save_data_share": 0.03,  # assumption: views with Save-Data (a separate cached variant)
    # -- variant bytes --------------------------------------------------------------------
    "bytes_at_800": 35_000,  # measured: benches/bandwidth.rs, mean imago output at w:800 (README)
    "bytes_width_exp": 1.7,  # assumption: bytes ~ width ** 1.7 (bits per pixel fall with size)
    "format_bytes": {"avif": 1.00, "webp": 1.05, "legacy": 1.14},  # README bandwidth: 0.96/0.91/0.84
    "save_data_bytes": 0.8,  # assumption: one quality step lower (15)
    # -- CDN topology and cache sizes (for this account) -------------------------------------
    "pops": 40,  # assumption: PoPs serving the audience; traffic share ~ 1/rank (Zipf 1)
    "pop_cache_bytes": 1e12,  # assumption: 1 TB of LRU per PoP for this account
    "shield_cache_bytes": 50e12,  # assumption: one origin shield (tiered cache), 50 TB
    # -- origin (imago) ------------------------------------------------------------------
    "pod_vcpu": 4,
    "pod_workers": 4,
    "target_utilisation": 0.65,  # k8s/ HPA target
    "pod_variant_cache_bytes": 256e6,  # IMAGO_CACHE_SIZE_MB default used in k8s/
    "pod_source_cache_bytes": 64e6,  # IMAGO_SOURCE_CACHE_MB
    "worker_peak_bytes": 150e6,  # measured: peak RSS growth per 12 MP transform (docs/design.md)
    "runtime_bytes": 150e6,  # measured: benches/soak.rs RSS ~105 MB, rounded up
    "min_pods": 3,  # k8s/ PDB and zone spread
    # CPU per miss (server CPU, 4080x3072 photo -> w:800, 2-core build machine): README Benchmarks
    # cargo bench --bench load (README), pipeline 3, the slower of its two runs: JPEG 59.8 ms,
    # WebP 98.7 ms, AVIF q60 217 ms
    "cpu_fixed": {"legacy": 0.060, "webp": 0.099, "avif": 0.217},
    "cpu_qauto": 0.267,  # same run: q:auto on the server, AVIF
    "qauto_share": 0.25,  # assumption: share of misses whose URL asks q:auto (f:auto URLs)
    # -- storage --------------------------------------------------------------------------
    "original_bytes": 2.5e6,  # assumption: mean upload (corpus photos 1.9-2.6 MB)
    "dedup_share": 0.0,  # assumption: identical uploads (SHA-256 keys) ignored
    "over_4096_share": 0.10,  # assumption: uploads above 4096 px (48-200 MP phones, DSLRs)
    "over_4096_bytes": 9e6,  # assumption: their mean size; capped to 4096 px they become ~3.2 MB
    "capped_bytes": 3.2e6,
    "jpeg_share": 0.60,  # assumption: uploads that are JPEG (HEIC/PNG/WebP the rest)
    "jxl_saving": 0.20,  # libjxl docs: lossless JPEG recompression saves ~20 %, bit-exact reversible
    "jxl_cpu": 0.25,  # assumption: core-seconds to recompress a 12 MP JPEG (cjxl, effort 7)
    "ia_after_days": 30,  # lifecycle: Standard -> Standard-IA at 30 days (the IA minimum)
    "analytics_bytes_per_event": 22,  # measured: docs/analytics.md (zstd JSON lines)
    # -- prices: AWS us-east-1 list prices as of 2026 as best known (check before budgeting) ----
    # https://aws.amazon.com/s3/pricing/  https://aws.amazon.com/cloudfront/pricing/
    # https://aws.amazon.com/ec2/pricing/on-demand/
    "s3_standard_tiers": [(50e3, 0.023), (450e3, 0.022), (math.inf, 0.021)],  # $/GB-month by GB
    "s3_ia": 0.0125,  # $/GB-month, 128 KB minimum, 30-day minimum
    "s3_ia_retrieval": 0.01,  # $/GB
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "s3_ia_get": 0.001 / 1000,
    "s3_transition_ia": 0.01 / 1000,
    # tiers are (monthly GB up to which the price applies, $/GB)
    "cdn_egress_tiers": [  # CloudFront, North America/Europe: 10 TB, next 40, 100, 350, 524 TB, 4 PB, over 5 PB
        (10e3, 0.085), (50e3, 0.080), (150e3, 0.060), (500e3, 0.040), (1024e3, 0.030),
        (5120e3, 0.025), (math.inf, 0.020)],
    "cdn_request": 0.0100 / 10_000,  # CloudFront HTTPS requests, NA/EU
    "shield_request": 0.0075 / 10_000,  # CloudFront Origin Shield, per request reaching it
    "internet_egress_tiers": [  # EC2/S3 -> internet (origin egress to a non-AWS CDN), $/GB
        (10e3, 0.09), (50e3, 0.085), (150e3, 0.07), (math.inf, 0.05)],
    "vcpu_hour": 0.1785 / 4,  # c7i.xlarge on demand (x86, like the benchmark machine)
}

DAY = 86_400
MONTH_DAYS = 365 / 12
GB = 1e9


# --------------------------------------------------------------------------------------------
# Traffic laws
# --------------------------------------------------------------------------------------------
def views_on_day(age, p=P):
    """Expected views of an image of mean popularity on its `age`-th day (0 = upload day)."""
    return p["views_day_one"] * (1 + age) ** -p["decay_exponent"]


def traffic_multiple(day, p=P):
    """Views per day on service day `day` (0-based), as a multiple of day one's views."""
    return sum(views_on_day(a, p) for a in range(day + 1)) / p["views_day_one"]


def old_model_multiple(day):
    """The old plan's '10 views on day one, 2/day after a week' (nothing on days 2-7, read
    literally): traffic on service day `day` as a multiple of day one's. It never converges."""
    return (10 + 2 * max(0, day - 7)) / 10


def pareto_weights(n, p, rng):
    """n iid popularity weights with mean 1: Pareto of index 1/zipf_exponent, truncated at
    zipf_max_weight (rank-frequency of such weights is Zipf with exponent zipf_exponent)."""
    a = 1 / p["zipf_exponent"]
    h = p["zipf_max_weight"]
    # inverse CDF of the Pareto(a) truncated to [1, h]
    c = 1 - h ** -a
    w = [(1 - rng.random() * c) ** (-1 / a) for _ in range(n)]
    mean = a / (a - 1) * (1 - h ** (1 - a)) / c if a != 1 else math.log(h) / c
    return [x / mean for x in w]


def snap_up(w, ladder):
    i = bisect.bisect_left(ladder, w)
    return ladder[i] if i < len(ladder) else w


def variant_bytes(width, fmt, save_data, p=P):
    b = p["bytes_at_800"] * (width / 800) ** p["bytes_width_exp"] * p["format_bytes"][fmt]
    return b * (p["save_data_bytes"] if save_data else 1.0)


def variant_mix(p=P):
    """[(probability, width, format, save_data, bytes)] of the distinct variants a view can load
    (device x DPR x slot -> srcset width on the ladder, x format class x Save-Data), merged."""
    mix = {}
    for dev, (share, dprs, css) in p["devices"].items():
        for dpr, dshare in dprs.items():
            for slot, sshare in p["slots"].items():
                width = snap_up(round(css[slot] * float(dpr)), p["ladder"])
                for fmt, fshare in p["formats"].items():
                    for sd, sdshare in ((False, 1 - p["save_data_share"]), (True, p["save_data_share"])):
                        k = (width, fmt, sd)
                        mix[k] = mix.get(k, 0.0) + share * dshare * sshare * fshare * sdshare
    return [(pr, w, f, sd, variant_bytes(w, f, sd, p)) for (w, f, sd), pr in sorted(mix.items())]


def pop_shares(n):
    z = [1 / (k + 1) for k in range(n)]
    s = sum(z)
    return [x / s for x in z]


# --------------------------------------------------------------------------------------------
# Caches
# --------------------------------------------------------------------------------------------
class LRU:
    """Byte-weighted LRU: `access` returns True on a hit and inserts on a miss."""

    __slots__ = ("cap", "used", "d", "hits", "misses")

    def __init__(self, cap):
        self.cap = cap
        self.used = 0.0
        self.d = OrderedDict()
        self.hits = 0
        self.misses = 0

    def access(self, key, size):
        d = self.d
        if key in d:
            d.move_to_end(key)
            self.hits += 1
            return True
        self.misses += 1
        if size > self.cap:
            return False
        d[key] = size
        self.used += size
        while self.used > self.cap:
            _, s = d.popitem(last=False)
            self.used -= s
        return False


def lru_uniform_hit_ratio(capacity_items, n_items):
    """Closed form: LRU under independent requests, uniform popularity: C / N."""
    return min(1.0, capacity_items / n_items)


def che_hit_ratio(probs, capacity_items):
    """Che's approximation for LRU under independent requests: solve sum(1 - e^{-p T}) = C."""
    if capacity_items >= len(probs):
        return 1.0
    lo, hi = 0.0, 1.0
    while sum(1 - math.exp(-q * hi) for q in probs) < capacity_items:
        hi *= 2
    for _ in range(100):
        t = (lo + hi) / 2
        if sum(1 - math.exp(-q * t) for q in probs) < capacity_items:
            lo = t
        else:
            hi = t
    return sum(q * (1 - math.exp(-q * t)) for q in probs)


def compulsory_hit_ratio(views, object_probs, p=P, grid=400):
    """Closed form of an infinite cache: an image of weight w gets Poisson(w * views) requests,
    object j (a variant, or a variant at a PoP) with probability p_j, so it causes
    sum_j (1 - e^{-w views p_j}) misses; hit ratio = 1 - E[misses] / E[requests], the
    expectation over the truncated Pareto weights (numeric integration in log w)."""
    a = 1 / p["zipf_exponent"]
    h = p["zipf_max_weight"]
    c = 1 - h ** -a
    mean = a / (a - 1) * (1 - h ** (1 - a)) / c
    misses = 0.0
    total = 0.0
    for i in range(grid):
        u0, u1 = math.log(h) * i / grid, math.log(h) * (i + 1) / grid
        x = math.exp((u0 + u1) / 2)  # raw weight
        dens = a * x ** (-a - 1) / c * x * (u1 - u0)  # pdf(x) dx, dx = x du
        w = x / mean
        misses += dens * sum(1 - math.exp(-w * views * q) for q in object_probs)
        total += dens * w * views
    return 1 - misses / total


# --------------------------------------------------------------------------------------------
# The simulation
# --------------------------------------------------------------------------------------------
def simulate(scale, days, seed=1, p=P, shield=True, pods=64):
    """Samples every view of `days` service days at `scale`; returns per-month counters."""
    rng = random.Random(seed)
    per_day = p["uploads_per_hour"] * 24 * scale
    n_img = max(1, round(per_day))
    mix = variant_mix(p)
    v_cum = list(_cumsum([m[0] for m in mix]))
    v_bytes = [m[4] for m in mix]
    v_fmt = [m[2] for m in mix]
    nv = len(mix)
    shares = pop_shares(p["pops"])
    pop_cum = list(_cumsum(shares))
    pop_caches = [LRU(p["pop_cache_bytes"] * scale) for _ in range(p["pops"])]
    shield_cache = LRU(p["shield_cache_bytes"] * scale) if shield else None
    origin = [LRU(p["pod_variant_cache_bytes"] * pods * scale / pods) for _ in range(pods)]
    age_cum = list(_cumsum(views_on_day(a, p) for a in range(days)))
    cohorts = []  # cumulative weights of each day's uploads
    months = []
    carry = 0.0
    for day in range(days):
        cohorts.append(list(_cumsum(pareto_weights(n_img, p, rng))))
        m = min(11, int(day / MONTH_DAYS)) if days >= 365 else int(day / MONTH_DAYS)
        while len(months) <= m:
            months.append(_counters())
        c = months[m]
        c["days"] += 1
        # expected views today: every cohort's uploads x their age's views (mean weight 1)
        expect = n_img * age_cum[day] * (per_day / n_img) + carry
        n_req = int(expect)
        carry = expect - n_req
        top = age_cum[day]
        rnd = rng.random
        for _ in range(n_req):
            age = bisect.bisect_left(age_cum, rnd() * top, 0, day + 1)
            coh = cohorts[day - age]
            img = (day - age) * n_img + bisect.bisect_left(coh, rnd() * coh[-1], 0, n_img - 1)
            vid = bisect.bisect_left(v_cum, rnd() * v_cum[-1], 0, nv - 1)
            size = v_bytes[vid]
            key = img * nv + vid
            pop = bisect.bisect_left(pop_cum, rnd() * pop_cum[-1], 0, len(pop_cum) - 1)
            c["requests"] += 1
            c["edge_bytes"] += size
            if pop_caches[pop].access(key, size):
                c["edge_hits"] += 1
                continue
            c["shield_requests"] += 1
            if shield_cache is not None:
                if shield_cache.access(key, size):
                    c["shield_hits"] += 1
                    continue
            c["origin_requests"] += 1
            c["origin_bytes"] += size
            if origin[(key * 2654435761 >> 7) % pods].access(key, size):
                c["origin_hits"] += 1
                continue
            c["transforms"] += 1
            c["transforms_" + v_fmt[vid]] += 1
            if age >= p["ia_after_days"]:
                c["cold_fetches"] += 1
    return {"scale": scale, "days": days, "seed": seed, "shield": shield, "pods": pods,
            "images_per_day": n_img, "variants": nv, "months": months}


def _counters():
    keys = ["days", "requests", "edge_hits", "shield_requests", "shield_hits", "origin_requests",
            "origin_hits", "transforms", "transforms_avif", "transforms_webp", "transforms_legacy",
            "cold_fetches", "edge_bytes", "origin_bytes"]
    return {k: 0 for k in keys}


def _cumsum(xs):
    s = 0.0
    for x in xs:
        s += x
        yield s


# --------------------------------------------------------------------------------------------
# From counters to the plan
# --------------------------------------------------------------------------------------------
def tiered(quantity, tiers):
    cost, low = 0.0, 0.0
    for top, price in tiers:
        if quantity <= low:
            break
        cost += (min(quantity, top) - low) * price
        low = top
    return cost


def ratios(c):
    req = c["requests"] or 1
    return {
        "edge_hit": c["edge_hits"] / req,
        "shield_hit": c["shield_hits"] / (c["shield_requests"] or 1),
        "origin_hit": c["origin_hits"] / (c["origin_requests"] or 1),
        "overall_hit": 1 - c["transforms"] / req,
    }


def plan(sim, p=P):
    s = sim["scale"]
    mix = variant_mix(p)
    cpu_fixed_mean = None
    rows = []
    stored_gb = 0.0
    day_end = 0
    monthly_put = p["uploads_per_hour"] * 24 * MONTH_DAYS
    for i, c in enumerate(sim["months"]):
        secs = c["days"] * DAY
        r = ratios(c)
        rate = c["requests"] / s / secs
        origin_rate = c["origin_requests"] / s / secs
        tf_rate = c["transforms"] / s / secs
        cpu_fixed = sum(c["transforms_" + f] * p["cpu_fixed"][f] for f in p["cpu_fixed"]) / (c["transforms"] or 1)
        cpu_fixed_mean = cpu_fixed
        cpu_plan = (1 - p["qauto_share"]) * cpu_fixed + p["qauto_share"] * p["cpu_qauto"]
        peak = p["diurnal_peak"]
        busy = {k: tf_rate * peak * v for k, v in
                (("fixed", cpu_fixed), ("qauto", p["cpu_qauto"]), ("plan", cpu_plan))}
        cores = {k: v / p["target_utilisation"] for k, v in busy.items()}
        pods = {k: max(p["min_pods"], math.ceil(v / p["pod_vcpu"])) for k, v in cores.items()}
        mean_cores = tf_rate * cpu_plan / p["target_utilisation"]
        uploads = p["uploads_per_hour"] * 24 * c["days"]
        day_end += c["days"]
        stored_gb += uploads * p["original_bytes"] * (1 - p["dedup_share"]) / GB
        egress_gb = c["edge_bytes"] / s / GB
        origin_gb = c["origin_bytes"] / s / GB
        # IA: what has been stored for >= 30 days at the end of this month
        ia_gb = max(0.0, stored_gb - p["uploads_per_hour"] * 24 * p["ia_after_days"] * p["original_bytes"] / GB)
        std_gb = stored_gb - ia_gb
        cost = {
            "alt_storage_all_standard": tiered(stored_gb, p["s3_standard_tiers"]),
            "storage_tiered": tiered(std_gb, p["s3_standard_tiers"]) + ia_gb * p["s3_ia"],
            "put": uploads * p["s3_put"],
            "get": (c["transforms"] - c["cold_fetches"]) / s * p["s3_get"] + c["cold_fetches"] / s * p["s3_ia_get"],
            "ia_retrieval": c["cold_fetches"] / s * p["original_bytes"] / GB * p["s3_ia_retrieval"],
            "transitions": (max(0, day_end - p["ia_after_days"]) - max(0, day_end - c["days"] - p["ia_after_days"]))
            * p["uploads_per_hour"] * 24 * p["s3_transition_ia"],
            "cdn_egress": tiered(egress_gb, p["cdn_egress_tiers"]),
            "cdn_requests": c["requests"] / s * p["cdn_request"],
            "shield_requests": c["shield_requests"] / s * p["shield_request"] if sim["shield"] else 0.0,
            "alt_origin_egress_non_aws_cdn": tiered(origin_gb, p["internet_egress_tiers"]),
            "compute": max(mean_cores, p["min_pods"] * p["pod_vcpu"]) * p["vcpu_hour"] * 24 * c["days"],
        }
        rows.append({
            "month": i + 1, "days": c["days"], **r,
            "views_per_s": rate, "views_per_s_peak": rate * peak,
            "origin_per_s": origin_rate, "origin_per_s_peak": origin_rate * peak,
            "transforms_per_s": tf_rate, "transforms_per_s_peak": tf_rate * peak,
            "cpu_per_miss_fixed": cpu_fixed, "cpu_per_miss_plan": cpu_plan,
            "cores_peak": cores, "pods_peak": pods, "mean_cores_plan": mean_cores,
            "stored_pb": stored_gb / 1e6, "stored_ia_pb": ia_gb / 1e6,
            "egress_pb": egress_gb / 1e6, "origin_egress_tb": origin_gb / 1e3,
            "mean_variant_bytes": c["edge_bytes"] / (c["requests"] or 1),
            "analytics_gb_per_day": c["origin_requests"] / s / c["days"] * p["analytics_bytes_per_event"] / GB,
            "cost": cost,
        })
    mem = p["pod_workers"] * p["worker_peak_bytes"] + p["pod_variant_cache_bytes"] + p["pod_source_cache_bytes"] + p["runtime_bytes"]
    return {"rows": rows, "pod_memory_bytes": mem, "monthly_uploads": monthly_put,
            "variants": len(mix), "cpu_fixed_mean": cpu_fixed_mean}


def storage_levers(pl, p=P):
    """(name, GB stored at the end of the last month, that month's storage $) for each lever,
    cumulative: masters capped at 4096 px, then lossless JPEG -> JPEG XL, then IA after 30 days."""
    rows = pl["rows"]
    gb = rows[-1]["stored_pb"] * 1e6
    ia = rows[-1]["stored_ia_pb"] * 1e6
    base = p["original_bytes"]
    capped = base - p["over_4096_share"] * (p["over_4096_bytes"] - p["capped_bytes"])
    jxl = capped * (1 - p["jpeg_share"] * p["jxl_saving"])
    out = []
    for name, per in (("as uploaded", base), ("masters capped at 4096 px", capped),
                      ("+ lossless JPEG -> JPEG XL", jxl)):
        g = gb * per / base
        out.append((name, g, tiered(g, p["s3_standard_tiers"])))
    g, i = gb * jxl / base, ia * jxl / base
    out.append((f"+ Standard-IA after {p['ia_after_days']} days", g,
                tiered(g - i, p["s3_standard_tiers"]) + i * p["s3_ia"]))
    return out


def closed_forms(p=P, days=365):
    """Infinite-cache bounds over an image's first `days` days of views."""
    mix = variant_mix(p)
    views = sum(views_on_day(a, p) for a in range(days))
    vprobs = [m[0] for m in mix]
    shares = pop_shares(p["pops"])
    per_pop = [q * s for q in vprobs for s in shares]
    return {
        "views_per_image": views,
        "global_infinite": compulsory_hit_ratio(views, vprobs, p),
        "per_pop_infinite": compulsory_hit_ratio(views, per_pop, p),
        "old_claim_views": 10.0,
        "global_infinite_10_views": compulsory_hit_ratio(10.0, vprobs, p),
        "per_pop_infinite_10_views": compulsory_hit_ratio(10.0, per_pop, p),
    }


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------
def fmt_money(x):
    return f"${x / 1e3:,.0f} k" if x >= 1e4 else f"${x:,.0f}"


def report(sim, pl, cf, p=P, out=sys.stdout, sets=()):
    w = out.write
    cmd = f"python3 scripts/capacity.py --scale {sim['scale']:g} --days {sim['days']} --seed {sim['seed']}"
    if not sim["shield"]:
        cmd += " --no-shield"
    cmd += "".join(f" --set {kv}" for kv in sets)
    w(f"# {cmd}\n")
    w(f"# {sim['images_per_day']} sampled uploads/day, {sim['variants']} distinct variants per image, "
      f"{p['pops']} PoPs, shield {'on' if sim['shield'] else 'off'}, {sim['pods']} hashed origin caches\n\n")
    w("## traffic law\n")
    for d in (0, 6, 29, 89, 364):
        w(f"day {d + 1:>3}: views/day {traffic_multiple(d, p):5.2f}x day one "
          f"(old plan's '2/day after a week': {old_model_multiple(d):5.1f}x)\n")
    w(f"views per image over its first year: {cf['views_per_image']:.1f}\n\n")
    w("## closed forms (infinite caches: compulsory misses only)\n")
    w(f"one global cache: {cf['global_infinite']:.3f} edge hit ratio at {cf['views_per_image']:.1f} views/image, "
      f"{cf['global_infinite_10_views']:.3f} at 10\n")
    w(f"per-PoP caches:   {cf['per_pop_infinite']:.3f} at {cf['views_per_image']:.1f} views/image, "
      f"{cf['per_pop_infinite_10_views']:.3f} at 10\n")
    w("origin caches behind a shield: a hit needs a key the shield evicted while the pod still holds it, "
      "i.e. back within the time the pod takes to see its cache's worth of shield misses\n\n")
    w("## month by month (rates are full-size; peak = mean x diurnal peak factor "
      f"{p['diurnal_peak']})\n")
    w("| month | views/s | peak | edge hit | shield hit | origin hit | origin req/s peak | transforms/s peak "
      "| cores peak (fixed / plan / q:auto) | pods peak (plan) | stored PB | egress PB | analytics GB/day |\n")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in pl["rows"]:
        cp = r["cores_peak"]
        w(f"| {r['month']} | {r['views_per_s']:,.0f} | {r['views_per_s_peak']:,.0f} | {r['edge_hit']:.3f} "
          f"| {r['shield_hit']:.3f} | {r['origin_hit']:.3f} | {r['origin_per_s_peak']:,.0f} "
          f"| {r['transforms_per_s_peak']:,.0f} | {cp['fixed']:,.0f} / {cp['plan']:,.0f} / {cp['qauto']:,.0f} "
          f"| {r['pods_peak']['plan']} | {r['stored_pb']:.1f} | {r['egress_pb']:.2f} "
          f"| {r['analytics_gb_per_day']:.2f} |\n")
    last = pl["rows"][-1]
    w(f"\nmean variant served: {last['mean_variant_bytes'] / 1e3:.1f} KB; CPU per miss (fixed-quality mix): "
      f"{last['cpu_per_miss_fixed'] * 1e3:.0f} ms; plan mix ({p['qauto_share']:.0%} q:auto): "
      f"{last['cpu_per_miss_plan'] * 1e3:.0f} ms\n")
    w(f"memory per pod: {pl['pod_memory_bytes'] / 1e9:.2f} GB ({p['pod_workers']} workers x "
      f"{p['worker_peak_bytes'] / 1e6:.0f} MB + caches + runtime)\n\n")
    w(f"## storage levers at month {len(pl['rows'])} (stored bytes and the month's storage bill)\n")
    for name, gb, cost in storage_levers(pl, p):
        w(f"- {name}: {gb / 1e6:.1f} PB, {fmt_money(cost)}/month\n")
    jxl_cores = p["uploads_per_hour"] / 3600 * p["jxl_cpu"]
    w(f"- JPEG XL recompression CPU: {jxl_cores:,.0f} cores on average "
      f"({fmt_money(jxl_cores * p['vcpu_hour'] * 24 * MONTH_DAYS)}/month)\n\n")
    w("## cost by month (USD, list prices; alt_ lines are alternatives, not in the total: every "
      "original in S3 Standard, and origin egress were the CDN not CloudFront)\n")
    lines = list(last["cost"].keys())
    w("| month | " + " | ".join(lines) + " | total (tiered storage) |\n")
    w("|---|" + "---|" * (len(lines) + 1) + "\n")
    year = {k: 0.0 for k in lines}
    for r in pl["rows"]:
        cst = r["cost"]
        for k in lines:
            year[k] += cst[k]
        total = sum(v for k, v in cst.items() if not k.startswith("alt_"))
        w(f"| {r['month']} | " + " | ".join(fmt_money(cst[k]) for k in lines) + f" | {fmt_money(total)} |\n")
    ytot = sum(v for k, v in year.items() if not k.startswith("alt_"))
    w("| year | " + " | ".join(fmt_money(year[k]) for k in lines) + f" | {fmt_money(ytot)} |\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1e-5, help="fraction of the catalogue sampled")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pods", type=int, default=64, help="hashed origin caches")
    ap.add_argument("--no-shield", action="store_true", help="edge straight to the origin")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                    help="override an input, e.g. --set shield_cache_bytes=2e14")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    p = dict(P)
    for kv in a.set:
        name, _, value = kv.partition("=")
        if name not in p:
            ap.error(f"unknown input {name!r} (see the P block in {__file__})")
        p[name] = json.loads(value)
    sim = simulate(a.scale, a.days, a.seed, p=p, shield=not a.no_shield, pods=a.pods)
    pl = plan(sim, p)
    cf = closed_forms(p, days=min(a.days, 365))
    if a.json:
        json.dump({"sim": sim, "plan": pl, "closed_forms": cf}, sys.stdout, indent=1, default=str)
    else:
        report(sim, pl, cf, p, sets=a.set)


if __name__ == "__main__":
    main()
