"""What the API token check costs, measured so that 3% shows.

Used by scripts/bench-registry and scripts/bench-query with --auth both.
Switching auth by SIGHUP (what both did before) starts new, cold workers
for every switch, and on a shared 2-core machine one round differs from
the next by more than the check could cost.  So instead:

  * Instances side by side.  The caller starts datachatd twice from the
    same build, on the same system database and target: "off" (auth
    unset) and "on" (auth = required, wrk sends a token), and optionally
    a second "off" instance for an A/A run.  Nothing is reloaded while
    measuring, so every round meets warm workers (their target
    connections, catalog and caches made during a discarded warm-up
    round of each instance).
  * Short rounds in pairs, in ABBA order (off-on, on-off, off-on, ...),
    so a drift of the machine's speed cancels within two pairs.  Each
    pair gives the cost 1 - on/off; the median of the pairs and its
    distribution-free 95% confidence interval (order statistics of the
    binomial) are printed.  The A/A run (off against the second off
    instance, same procedure) shows what two identical instances differ
    by: the resolution of the method on this machine at that moment.
  * The check's own time, directly: every worker adds the time it spends
    in dc_auth_check to /metrics (datachatd_auth_check_seconds_sum,
    datachatd_auth_checks_total); against the CPU time the on instance's
    workers used over the same rounds (/proc/PID/stat) it is the share
    of the work that goes to the check.

The verdict line says plainly whether the 3% budget is met: NOT MET when
the paired interval lies above 3% or the check's own share is above it;
MET when both are within it, or when the check's share is and the pairs
cannot tell (their interval straddles 3%; the line says so).
"""
import math
import re
import statistics
import urllib.request

BUDGET = 3.0        # percent


def median_ci(xs, conf=0.95):
    """The median's distribution-free interval: (lo, hi, coverage).

    The k-th smallest and k-th largest of n values bound the median with
    probability 1 - 2 P(Binomial(n, 1/2) < k); k is the largest that
    keeps that at least conf (k = 1, the extremes, when n is too small
    to reach it: the coverage returned says how much it is then).
    """
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan"), float("nan"), 0.0
    k, cov = 1, 1.0 - 2 * 0.5 ** n
    for j in range(2, n // 2 + 1):
        tail = sum(math.comb(n, i) for i in range(j)) / 2.0 ** n
        if 1.0 - 2 * tail < conf:
            break
        k, cov = j, 1.0 - 2 * tail
    return s[k - 1], s[n - k], cov


def metrics(url, token=None):
    """The /metrics counters of the check: (checks, seconds)."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    checks = re.search(r"^datachatd_auth_checks_total (\S+)$", text, re.M)
    secs = re.search(r"^datachatd_auth_check_seconds_sum (\S+)$", text, re.M)
    if checks is None or secs is None:
        raise RuntimeError("no datachatd_auth_check counters in %s" % url)
    return float(checks.group(1)), float(secs.group(1))


def cpu_seconds(pids):
    """utime + stime of these processes, in seconds."""
    import os
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / float(tick)


def paired(run_a, run_b, pairs, label_a, label_b, log=print):
    """pairs rounds of each, ABBA; each run_* returns (req/s, p99 ms).

    Returns the per-pair costs 100 * (1 - b/a) and both sides' results.
    """
    a_res, b_res, costs = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            ra = run_a()
            rb = run_b()
        else:
            rb = run_b()
            ra = run_a()
        a_res.append(ra)
        b_res.append(rb)
        costs.append(100.0 * (1.0 - rb[0] / ra[0]) if ra[0] else 0.0)
        log("  pair %2d (%s): %s %8.0f req/s p99 %6.2f ms, %s %8.0f req/s "
            "p99 %6.2f ms: %+5.1f%%" % (
                i + 1, "%s-%s" % ((label_a, label_b) if i % 2 == 0 else
                                  (label_b, label_a)),
                label_a, ra[0], ra[1], label_b, rb[0], rb[1], costs[-1]))
    return costs, a_res, b_res


def summary(costs):
    lo, hi, cov = median_ci(costs)
    return ("median %+.1f%%, %d%% interval [%+.1f%%, %+.1f%%], pairs "
            "from %+.1f%% to %+.1f%%" % (statistics.median(costs),
                                         round(100 * cov), lo, hi,
                                         min(costs), max(costs)))


def compare(what, run_off, run_on, on_metrics, on_pids, pairs, warmup,
            run_off2=None, log=print):
    """The whole comparison; prints it and returns the verdict line.

    run_off/run_on/run_off2(seconds) drive one round on that instance
    and return (req/s, p99 ms); on_metrics() returns (checks, seconds)
    from the on instance's /metrics; on_pids() its workers.
    """
    log("== auth off vs on: %s, instances side by side, nothing reloaded"
        % what)
    # A new instance's first round pays for its workers' target
    # connections and caches: its p99 shows what a cold worker costs,
    # whatever auth is (the second off instance is as new as the on one).
    log("  warm-up (discarded): one round of each")
    for label, run in (("off", run_off), ("on", run_on), ("off2", run_off2)):
        if run is not None:
            rps, p99 = run(warmup)
            log("  warm-up %-4s %8.0f req/s p99 %6.2f ms" % (label, rps, p99))
    pids = on_pids()
    c0, s0 = on_metrics()
    cpu0 = cpu_seconds(pids)
    costs, offs, ons = paired(lambda: run_off(None), lambda: run_on(None),
                              pairs, "off", "on", log)
    c1, s1 = on_metrics()
    cpu1 = cpu_seconds(pids)
    if sorted(on_pids()) != sorted(pids):
        raise RuntimeError("the on instance's workers changed while "
                           "measuring")
    p99_off = statistics.median(r[1] for r in offs)
    p99_on = statistics.median(r[1] for r in ons)
    log("  req/s median: off %.0f, on %.0f; p99 median: off %.2f ms, on "
        "%.2f ms" % (statistics.median(r[0] for r in offs),
                     statistics.median(r[0] for r in ons), p99_off, p99_on))
    log("  auth on costs (paired, header bytes included): %s"
        % summary(costs))
    aa = None
    if run_off2 is not None:
        log("  A/A: the same with a second auth-off instance in place of "
            "the on one")
        aa, _, _ = paired(lambda: run_off(None), lambda: run_off2(None),
                          max(6, pairs // 2), "off", "off2", log)
        log("  A/A difference (the method's resolution): %s" % summary(aa))
    checks, secs, cpu = c1 - c0, s1 - s0, cpu1 - cpu0
    direct = 100.0 * secs / cpu if cpu > 0 else None
    if checks > 0 and direct is not None:
        log("  the check itself: %d checks, %.2f us each, %.3f s of the "
            "on instance's %.1f s of worker CPU: %.2f%%"
            % (checks, 1e6 * secs / checks, secs, cpu, direct))
    else:
        log("  the check itself: no checks counted (or no CPU time)")
        direct = None
    lo, hi, _ = median_ci(costs)
    med = statistics.median(costs)
    if lo > BUDGET:
        v = ("NOT MET: auth on is slower by more than %.0f%% in the paired "
             "rounds (median %+.1f%%, interval [%+.1f%%, %+.1f%%])"
             % (BUDGET, med, lo, hi))
    elif direct is not None and direct > BUDGET:
        v = ("NOT MET: the check itself takes %.2f%% of the workers' CPU "
             "(> %.0f%%)" % (direct, BUDGET))
    elif direct is None:
        v = ("NOT SHOWN: the check's own time was not counted%s"
             % ("; the paired rounds are within it (interval [%+.1f%%, "
                "%+.1f%%])" % (lo, hi) if hi <= BUDGET else ""))
    elif hi <= BUDGET:
        v = ("MET: the check takes %.2f%% of the workers' CPU, and the "
             "paired rounds put auth on's cost at %+.1f%% (interval "
             "[%+.1f%%, %+.1f%%], within %.0f%%)"
             % (direct, med, lo, hi, BUDGET))
    else:
        v = ("MET by the check's own time (%.2f%% of the workers' CPU); "
             "the paired rounds cannot resolve %.0f%% on this machine now "
             "(median %+.1f%%, interval [%+.1f%%, %+.1f%%]%s)"
             % (direct, BUDGET, med, lo, hi,
                "; A/A %+.1f%%" % statistics.median(aa) if aa else ""))
    line = "token check budget (<= %.0f%%): %s" % (BUDGET, v)
    log(line)
    return line
