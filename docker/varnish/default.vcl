# Varnish edge for the compose stack: one imago origin, VCL 4.1 (Varnish 7.x).
#
# Compile check (varnishd resolves backend hosts at compile time, so outside the
# compose network substitute the host):
#     sed 's/"imago"/"127.0.0.1"/' docker/varnish/default.vcl > /tmp/edge.vcl
#     varnishd -C -f /tmp/edge.vcl > /dev/null
vcl 4.1;

import std;

probe imago_healthz {
    # Liveness only: /readyz turns 503 while workers are saturated or the store is
    # unreachable, and with a single origin marking it sick would turn every cache
    # miss into an edge-generated 503 instead of the origin's own answer.
    .url = "/healthz";
    .expected_response = 200;
    .timeout = 2s;
    .interval = 5s;
    .window = 5;
    .threshold = 3;
    .initial = 3;
}

backend imago {
    .host = "imago";
    .port = "8080";
    .probe = imago_healthz;
    .connect_timeout = 2s;
    # A cold 12 MP AVIF encode can take seconds; the origin sheds load (429/503)
    # rather than queueing forever, so this is a backstop.
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
}

# BEGIN imago-shared (identical in default.vcl and lb.vcl; .ci/lint-deploy.sh checks it)
#
# Request normalisation and cache policy for imago. The origin answers signed
# variants with
#   Cache-Control: public, max-age=31536000, s-maxage=31536000, immutable
#   ETag: "<strong>"
#   Vary: <exactly the request headers it used>, among Accept, Sec-CH-DPR, DPR,
#         Sec-CH-Width, Width, Sec-CH-Viewport-Width, Viewport-Width, Save-Data, ECT
# Varnish honours that Vary. imago_recv shrinks the number of distinct values those
# headers can take, mirroring how the origin reads them (src/negotiate.rs), so that
# one cached object serves every client that would have received the same bytes.
# None of it changes the bytes a request gets (tests/cdn.rs checks it).

# Who may read /metrics through the edge. Prometheus should scrape the origin (or its
# metrics port) directly; this is only for debugging on the edge host itself.
acl imago_metrics_clients {
    "127.0.0.0"/8;
    "::1";
}

# Who may send BAN requests (imago replicas): loopback and the private ranges that
# compose and Kubernetes pod networks use. The token (IMAGO_PURGE_TOKEN in varnishd's
# environment, the same value imago has) is checked as well.
acl imago_purgers {
    "127.0.0.0"/8;
    "::1";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}

sub imago_ban {
    # imago deletes an image: `BAN /` with X-Imago-Ban: img-<32 hex> (the image's tag,
    # also in each variant's Surrogate-Key) bans every variant of it at once, whatever
    # its options, Accept class or hints. Only obj.* is tested, so the ban lurker can
    # evict the objects in the background. An operator may ban a tenant-<name> too.
    if (req.method == "BAN") {
        if (client.ip !~ imago_purgers) {
            return (synth(403, "Forbidden"));
        }
        if (std.getenv("IMAGO_PURGE_TOKEN") !~ "^.{16,}$" ||
            req.http.X-Imago-Purge-Token != std.getenv("IMAGO_PURGE_TOKEN")) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.X-Imago-Ban !~ "^(img|tenant)-[a-z0-9-]{1,64}$") {
            return (synth(400, "Bad tag"));
        }
        if (std.ban("obj.http.Surrogate-Key ~ (^|\s)" + req.http.X-Imago-Ban + "(\s|$)")) {
            return (synth(200, "Banned"));
        }
        return (synth(500, std.ban_error()));
    }
}

sub imago_round_dpr {
    # As the origin (src/negotiate.rs, dpr_step): the nearest half, ties up, within
    # 1..IMAGO_MAX_DPR; unparseable -> 1.
    if (std.real(req.http.X-Imago-Hint, 1.0) >= 2.75) {
        set req.http.X-Imago-Hint = "3";
    } elsif (std.real(req.http.X-Imago-Hint, 1.0) >= 2.25) {
        set req.http.X-Imago-Hint = "2.5";
    } elsif (std.real(req.http.X-Imago-Hint, 1.0) >= 1.75) {
        set req.http.X-Imago-Hint = "2";
    } elsif (std.real(req.http.X-Imago-Hint, 1.0) >= 1.25) {
        set req.http.X-Imago-Hint = "1.5";
    } else {
        set req.http.X-Imago-Hint = "1";
    }
}

sub imago_snap_width {
    # IMAGO_WIDTH_LADDER default: 16,32,48,64,96,128,256,384,640,750,828,1080,1200,1920,2048,3840.
    # If the origin runs another ladder, this list must contain all its steps (or
    # delete the snapping in imago_recv); .ci/lint-deploy.sh compares it with the
    # default in src/config.rs.
    if (std.real(req.http.X-Imago-Hint, 0.0) <= 0.0) {
        unset req.http.X-Imago-Hint;
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 16.0) {
        set req.http.X-Imago-Hint = "16";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 32.0) {
        set req.http.X-Imago-Hint = "32";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 48.0) {
        set req.http.X-Imago-Hint = "48";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 64.0) {
        set req.http.X-Imago-Hint = "64";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 96.0) {
        set req.http.X-Imago-Hint = "96";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 128.0) {
        set req.http.X-Imago-Hint = "128";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 256.0) {
        set req.http.X-Imago-Hint = "256";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 384.0) {
        set req.http.X-Imago-Hint = "384";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 640.0) {
        set req.http.X-Imago-Hint = "640";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 750.0) {
        set req.http.X-Imago-Hint = "750";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 828.0) {
        set req.http.X-Imago-Hint = "828";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 1080.0) {
        set req.http.X-Imago-Hint = "1080";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 1200.0) {
        set req.http.X-Imago-Hint = "1200";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 1920.0) {
        set req.http.X-Imago-Hint = "1920";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 2048.0) {
        set req.http.X-Imago-Hint = "2048";
    } elsif (std.real(req.http.X-Imago-Hint, 0.0) <= 3840.0) {
        set req.http.X-Imago-Hint = "3840";
    } else {
        # Past the ladder's top the origin applies no bound: every such value is the same.
        set req.http.X-Imago-Hint = "100000";
    }
}

sub imago_viewport_width {
    # In: X-Imago-Hint = the Viewport-Width as sent, X-Imago-DPR = the normalised DPR.
    # Out: X-Imago-Hint = a CSS width the origin resolves exactly as the one sent. The
    # origin rounds the hint up to a whole pixel (at most 100000), multiplies it by the
    # DPR, rounds, and snaps that up to the ladder; the edge does the same and sends
    # floor(step / DPR), which the origin maps back to that step (steps are > 3 apart).
    # std.round rounds halves away from zero, as the origin does; std.round(x - 0.5)
    # is floor(x) for x > 0.
    set req.http.X-Imago-VW = std.round(std.real(req.http.X-Imago-Hint, 0.0) - 0.5);
    if (std.real(req.http.X-Imago-Hint, 0.0) > std.real(req.http.X-Imago-VW, 0.0)) {
        set req.http.X-Imago-VW = std.real(req.http.X-Imago-VW, 0.0) + 1.0;
    }
    if (std.real(req.http.X-Imago-VW, 0.0) > 100000.0) {
        set req.http.X-Imago-VW = "100000";
    }
    set req.http.X-Imago-Hint = std.round(std.real(req.http.X-Imago-VW, 0.0) * std.real(req.http.X-Imago-DPR, 1.0));
    call imago_snap_width;
    set req.http.X-Imago-Hint = std.integer(real = std.round(std.real(req.http.X-Imago-Hint, 0.0) / std.real(req.http.X-Imago-DPR, 1.0) - 0.5));
    unset req.http.X-Imago-VW;
}

sub imago_recv {
    # Built-in Host handling (lower-case it; 400 for HTTP/1.1 without Host), which
    # would otherwise be skipped by the return (hash) at the end.
    call vcl_req_host;

    # Purges from imago (authenticated; see imago_ban).
    call imago_ban;

    # Never trust client-supplied copies of our own debug header.
    unset req.http.X-Cache;

    # Request id: made here for every request (a client's X-Request-Id is replaced, so that
    # no client can make two requests share one), forwarded to the origin with a miss or pass,
    # and logged by varnishncsa (docs/analytics.md); not returned to clients (imago_deliver). The origin's
    # analytics event of a forwarded request carries the same id, which is how
    # `imago analytics` counts a miss once: as the edge's view.
    set req.http.X-Request-Id = "edge-" + server.identity + "-" + std.integer(time = now) + "-" + req.xid;

    # Uploads (POST /v1/uploads, PUT /v1/uploads/{key}) and every other method:
    # straight to the origin, request body streamed, nothing cached.
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }

    # API, health and readiness: always fresh from the origin, headers untouched.
    if (req.url ~ "^/v1/" || req.url ~ "^/(healthz|readyz)(\?.*)?$") {
        return (pass);
    }
    if (req.url ~ "^/metrics(\?.*)?$") {
        if (client.ip !~ imago_metrics_clients) {
            return (synth(403, "Forbidden"));
        }
        return (pass);
    }

    # Everything else is an image read, /{signature}/{options}/{source}. Signed URLs
    # carry all the authority a request needs: drop credentials and cookies so they
    # can neither reach the origin nor make the request uncacheable.
    unset req.http.Cookie;
    unset req.http.Authorization;

    # Accept -> one of four values, classified as the origin does (src/negotiate.rs,
    # AcceptClass; .ci/check_deploy.py vcl-accept checks the two agree): "image/jxl,image/avif"
    # if list elements are the media types image/jxl and image/avif (any case) without q=0,
    # else "image/avif" likewise, else "image/webp", else "legacy". Browsers send dozens of
    # distinct Accept strings; after this there are at most four variants per URL and hints.
    if (req.http.Accept ~ "(?i)(^|,)\s*image/jxl\s*(;(?!\s*q=(0+(\.0*)?|\.0+)\s*(;|,|$))[^;,]*)*(,|$)" &&
        req.http.Accept ~ "(?i)(^|,)\s*image/avif\s*(;(?!\s*q=(0+(\.0*)?|\.0+)\s*(;|,|$))[^;,]*)*(,|$)") {
        set req.http.Accept = "image/jxl,image/avif";
    } elsif (req.http.Accept ~ "(?i)(^|,)\s*image/avif\s*(;(?!\s*q=(0+(\.0*)?|\.0+)\s*(;|,|$))[^;,]*)*(,|$)") {
        set req.http.Accept = "image/avif";
    } elsif (req.http.Accept ~ "(?i)(^|,)\s*image/webp\s*(;(?!\s*q=(0+(\.0*)?|\.0+)\s*(;|,|$))[^;,]*)*(,|$)") {
        set req.http.Accept = "image/webp";
    } else {
        set req.http.Accept = "legacy";
    }

    # Device pixel ratio. The origin reads Sec-CH-DPR if present (else DPR) and
    # ignores the other one, so that one is dropped. The value is resolved as the origin
    # resolves it: the nearest half, ties up, within 1..3 (IMAGO_MAX_DPR): 1.25 -> 1.5,
    # 2.2 -> 2, 2.625 -> 2.5, unparseable -> 1. Five values instead of dozens, and the
    # origin answers them exactly as it answers the value sent.
    if (req.http.Sec-CH-DPR) {
        unset req.http.DPR;
        set req.http.X-Imago-Hint = req.http.Sec-CH-DPR;
        call imago_round_dpr;
        set req.http.Sec-CH-DPR = req.http.X-Imago-Hint;
    } elsif (req.http.DPR) {
        set req.http.X-Imago-Hint = req.http.DPR;
        call imago_round_dpr;
        set req.http.DPR = req.http.X-Imago-Hint;
    }
    set req.http.X-Imago-DPR = std.real(req.http.Sec-CH-DPR, std.real(req.http.DPR, 1.0));

    # Width. The origin reads Sec-CH-Width if present (else Width), rounds it up to a
    # whole pixel and snaps it up to IMAGO_WIDTH_LADDER (capped at w: x DPR). Snapping
    # here to the same ladder hands the origin a value it snaps to the same target, so
    # the bytes are identical and a URL has at most 17 width variants instead of one
    # per distinct width a browser sends. Values the origin would ignore (not a
    # positive number) are removed; values above the ladder become 100000 (no bound).
    if (req.http.Sec-CH-Width) {
        unset req.http.Width;
        set req.http.X-Imago-Hint = req.http.Sec-CH-Width;
        call imago_snap_width;
        if (req.http.X-Imago-Hint) {
            set req.http.Sec-CH-Width = req.http.X-Imago-Hint;
        } else {
            unset req.http.Sec-CH-Width;
        }
    } elsif (req.http.Width) {
        set req.http.X-Imago-Hint = req.http.Width;
        call imago_snap_width;
        if (req.http.X-Imago-Hint) {
            set req.http.Width = req.http.X-Imago-Hint;
        } else {
            unset req.http.Width;
        }
    }

    # Viewport width: used by the origin only when there is no width hint, multiplied
    # by the DPR and snapped to the ladder (imago_viewport_width); dropped when a width
    # hint makes it moot or the origin would ignore it (not a positive number).
    if (req.http.Sec-CH-Width || req.http.Width) {
        unset req.http.Sec-CH-Viewport-Width;
        unset req.http.Viewport-Width;
    } elsif (req.http.Sec-CH-Viewport-Width) {
        unset req.http.Viewport-Width;
        if (std.real(req.http.Sec-CH-Viewport-Width, 0.0) <= 0.0) {
            unset req.http.Sec-CH-Viewport-Width;
        } else {
            set req.http.X-Imago-Hint = req.http.Sec-CH-Viewport-Width;
            call imago_viewport_width;
            set req.http.Sec-CH-Viewport-Width = req.http.X-Imago-Hint;
        }
    } elsif (req.http.Viewport-Width) {
        if (std.real(req.http.Viewport-Width, 0.0) <= 0.0) {
            unset req.http.Viewport-Width;
        } else {
            set req.http.X-Imago-Hint = req.http.Viewport-Width;
            call imago_viewport_width;
            set req.http.Viewport-Width = req.http.X-Imago-Hint;
        }
    }
    unset req.http.X-Imago-Hint;
    unset req.http.X-Imago-DPR;

    # Save-Data: "on" or absent (the origin only tests for "on").
    if (req.http.Save-Data ~ "(?i)^\s*on\s*$") {
        set req.http.Save-Data = "on";
    } else {
        unset req.http.Save-Data;
    }
    # ECT: "2g" for 2g and slow-2g (which the origin treats like Save-Data: on), else absent.
    if (req.http.ECT ~ "(?i)^\s*(slow-)?2g\s*$") {
        set req.http.ECT = "2g";
    } else {
        unset req.http.ECT;
    }

    # While the origin is healthy, serve at most 10 s stale (and refresh in the
    # background); when it is sick, the full beresp.grace applies.
    if (std.healthy(req.backend_hint)) {
        set req.grace = 10s;
    }
    return (hash);
}

sub imago_backend_response {
    # Passed requests (API, uploads, health, metrics): deliver as-is.
    if (bereq.uncacheable) {
        return (deliver);
    }

    # Origin error. A background refresh that fails keeps the stale copy; otherwise
    # deliver the error uncached, with a 1 s hit-for-miss so waiting requests are
    # released at once instead of queueing on a failing fetch.
    if (beresp.status >= 500) {
        if (bereq.is_bgfetch) {
            return (abandon);
        }
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }

    # Client errors (bad signature, unknown source, ...) are cached briefly at most, so
    # a flood of bad URLs is absorbed without pinning mistakes for long. The built-in
    # logic that runs after this still turns no-store/private/Set-Cookie or a zero TTL
    # into a hit-for-miss.
    if (beresp.status >= 400) {
        if (beresp.ttl > 60s) {
            set beresp.ttl = 60s;
        }
        set beresp.grace = 0s;
    } else {
        # Success: the TTL comes from the origin's Cache-Control (s-maxage, then
        # max-age).
        # grace: how long a stale object may still be served while the origin's
        #        probe reports it sick (matters when IMAGO_CACHE_CONTROL sets a TTL
        #        shorter than the default year).
        # keep:  how long an expired object is kept to revalidate with If-None-Match
        #        against the origin's strong ETag (a 304 is far cheaper than a
        #        transform).
        set beresp.grace = 24h;
        set beresp.keep = 7d;
    }
}

sub imago_deliver {
    # Purge tags are for this edge (and a CDN in front of it would strip its own); clients
    # need not see image ids or tenant names.
    unset resp.http.Surrogate-Key;
    unset resp.http.Cache-Tag;
    # Request ids stay between the edge, the origin and their logs: the edge's id carries a
    # sequence number (it would tell one client how many requests others made), and a cached
    # object carries the id of the request that fetched it.
    unset resp.http.X-Request-Id;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
# END imago-shared

sub vcl_recv {
    set req.backend_hint = imago;
    call imago_recv;
}

sub vcl_backend_response {
    call imago_backend_response;
}

sub vcl_backend_error {
    # One immediate retry of an idempotent fetch on connection failure (an origin
    # restarting, a connection reset by a pod being replaced).
    if (bereq.retries < 1 && (bereq.method == "GET" || bereq.method == "HEAD")) {
        return (retry);
    }
}

sub vcl_deliver {
    call imago_deliver;
}
