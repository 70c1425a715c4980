"""The load benchmark's options, request encoding and summaries, without starting a server."""

import cramjam
import pytest

from benchmarks import bench_load as bench


def test_defaults_quick_and_rates_in_thousands():
    full = bench.parse_args([])
    assert (full.rates, full.step_seconds, full.interval, full.queries, full.deadline) == \
        ([2000, 5000, 10000, 20000, 40000, 60000, 80000], 30.0, 15.0, 100, 600.0)
    quick = bench.parse_args(["--quick", "--rates", "1k,2.5k", "--json", "out.json"])
    assert (quick.rates, quick.step_seconds, quick.queries, quick.deadline, str(quick.json)) == \
        ([1000, 2500], 10.0, 20, 300.0, "out.json")


@pytest.mark.parametrize("argv", [["--rates", "5000,2000"], ["--rates", "50"], ["--interval", "0.5"],
                                  ["--rates", "1000k", "--interval", "60"],  # 60 million series
                                  ["--step-seconds", "120"],  # 7 steps of 120 s do not fit 600 s
                                  ["--deadline", "7200"], ["--concurrency", "0"]])
def test_refuses_runs_it_cannot_bound(argv):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _messages(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, payload) of a protobuf message (length-delimited, varint and 64-bit fields)."""
    fields, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, at = _varint(data, at)
            fields.append((number, data[at:at + size]))
            at += size
        elif wire == 0:
            value, at = _varint(data, at)
            fields.append((number, value))
        else:
            fields.append((number, data[at:at + 8]))
            at += 8
    return fields


def test_a_write_request_carries_one_sample_of_each_series_snappy_compressed():
    assert len(bench.series_set(1)) == 1000
    body = bench.write_request(bench.series_set(1), 7.0, 1_700_000_000_123)
    raw = bytes(cramjam.snappy.decompress_raw(body))
    assert len(body) < len(raw) / 3  # compressed, as Prometheus sends it
    series = [_messages(ts) for number, ts in _messages(raw) if number == 1]
    assert len(series) == 1000
    labels = [dict(_messages(payload)) for number, payload in series[0] if number == 1]
    assert [(label[1], label[2]) for label in labels] == [
        (b"__name__", b"bench_load_metric_0"), (b"instance", b"target-2:9100"), (b"job", b"bench-load"), (b"series", b"1000")]
    sample = dict(_messages(next(payload for number, payload in series[0] if number == 2)))
    assert sample[2] == 1_700_000_000_123 and sample[1] == bytes.fromhex("0000000000001c40")  # 7.0 as a double


def test_each_series_gets_a_sample_every_interval_with_rising_timestamps():
    assert [bench.sets_for(rate, 15) for rate in (2000, 40000, 10)] == [30, 600, 1]  # 30k and 600k series
    sets, counters = [[bench.label_fields({"__name__": f"m{i}"})] for i in range(3)], [1]
    requests = bench.step_requests(sets, counters, rate=2000, seconds=3, start_ms=1_000_000)
    assert len(requests) == 6 and counters == [3, 2, 2]
    assert [offset for offset, _ in requests] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    stamps = [dict(_messages(dict(_messages(dict(_messages(bytes(cramjam.snappy.decompress_raw(body))))[1]))[2]))[2]
              for _, body in requests]
    assert stamps == [1_000_000, 1_000_500, 1_001_000, 1_001_500, 1_002_000, 1_002_500]


def _step(target, statuses, latencies, peaks=None, seconds=10.0):
    limits = {"router": 256 * 2**20, "ingestor": 2**30}
    return bench.summarise_step(target, target * 15, seconds, statuses, latencies, peaks or {"router": 100 * 2**20},
                                limits, {"router": 0.5})


def test_a_step_fails_on_errors_latency_memory_or_falling_behind():
    assert _step(200_000, [200] * 1999 + [500], [0.01] * 2000)["failed"] == []  # 0.05% non-2xx: within 0.1%
    assert _step(200_000, [200] * 1997 + [500, 0, 429], [0.01] * 2000)["failed"] == ["0.15% non-2xx"]
    slow = _step(2000, [200] * 20, [0.1] * 19 + [6.0])
    assert slow["failed"] == ["p99 6.00 s > 5 s"] and slow["p50_s"] == 0.1
    heavy = _step(2000, [200] * 20, [0.1] * 20, {"router": 300 * 2**20, "ingestor": 2**29})
    assert heavy["failed"] == ["router RSS 300 MiB > limit 256 MiB"]
    behind = _step(10_000, [200] * 80, [0.1] * 80)
    assert behind["accepted_per_s"] == 8000 and behind["failed"] == ["accepted 8000/s < 90% of target"]


def test_the_verdict_and_report_name_the_sustained_rate_and_the_first_error():
    steps = [_step(2000, [200] * 20, [0.01] * 20), _step(5000, [200] * 49 + [503], [0.02] * 50),
             _step(10_000, [200] * 85 + [503] * 15, [0.03] * 100)]
    verdict = bench.verdict(steps)
    assert (verdict["sustained_per_s"], verdict["sustained_target_per_s"], verdict["first_non_2xx_at_per_s"]) == (2000, 2000, 5000)
    assert verdict["stopped_by"] == ["15.00% non-2xx", "accepted 8500/s < 90% of target"]
    assert bench.verdict(steps[:1])["first_non_2xx_at_per_s"] is None
    result = {"machine": {"cores": 2, "cpu": "x", "load": "1.00", "thanos": "0.42.4"},
              "write": {"interval": 15.0, "concurrency": 16, "step_seconds": 10.0, "steps": steps[:1],
                        "verdict": bench.verdict(steps[:1]), "planned_head_kib_per_series": 8, "planned_base_mib": 256,
                        "limits_mib": {"router": 256, "ingestor": 1024}, "peak_rss_mib": {"router": 100.0, "ingestor": 200.0},
                        "cross_check": {"appended": 20000, "acknowledged": 20000}},
              "queries": {"history": {"series": 1500, "hours": 6},
                          "paths": {"query": {"requests": 5, "errors": 0, "p50_s": 0.05, "p99_s": 0.2},
                                    "query-frontend": {"requests": 5, "errors": 1, "p50_s": 0.01, "p99_s": 0.1,
                                                       "cache_hits": "4 of 5"}}}}
    report = bench.format_report(result)
    assert "first non-2xx: none up to 2000/s" in report
    assert "sustained: 2000 samples/s accepted" in report and "(equal)" in report
    assert "p50 50 ms, p99 200 ms\n" in report and "1 errors, p50 10 ms, p99 100 ms, results cache hits 4 of 5" in report
    assert "at 30000 series in its head: peak RSS 200.0 MiB" in report and "says 490 MiB" in report  # 256 + 30000 x 8 KiB


def test_quantities_and_percentiles():
    assert [bench.quantity_bytes(q) for q in ("256Mi", "1Gi", "500M", "1048576")] == [256 * 2**20, 2**30, 500 * 10**6, 2**20]
    assert bench.percentile(list(range(1, 101)), 99) == 99 and bench.percentile([], 50) is None
