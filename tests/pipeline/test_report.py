"""The storage report, opened in a real browser with the network cut off: its figures and every
chart's bars checked against DuckDB over the run's Parquet and rollup tables."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from inventory_contract.layout import ROLLUPS_ROOT, RunLayout
from inventory_contract.prices import GIB, prices_for
from pipeline.cli import main
from pipeline.synthetic import generate_delivery
from tests.browser import charts, figure_value, offline_page
from tests.oracles import changes_by_kind, reclaimable_bytes
from tests.two_days import BUCKET, DAY1, DAY2, TwoDays, two_days

pytestmark = pytest.mark.slow
HORIZONTAL = ("prefixes-depth-", "changes-objects", "cost-classes")
ARTIFACTS = os.environ.get("TEST_ARTIFACTS")


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    return two_days(tmp_path_factory.mktemp("report-days"), versions=True, objects=3000)


def _keep(path: Path, name: str) -> None:
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(ARTIFACTS) / name)


def _parts(out: Path, day: str) -> Path:
    return out / RunLayout(BUCKET, day).processed_prefix


def _one(sql: str) -> tuple:
    return duckdb.sql(sql).fetchall()[0]


def _check_bars(chart: dict, horizontal: bool) -> None:
    """Each bar segment is drawn at a length proportional to its value, one scale per chart (within
    half a pixel: SVG coordinates are rounded)."""
    bars = []
    for s, values in enumerate(chart["series"].values()):
        for i, value in enumerate(values):
            drawn = chart["drawn"].get(f"{s}-{i}")
            assert drawn is not None, (chart["labels"][i], "no bar drawn")
            bars.append((value, drawn[0] if horizontal else drawn[1]))
    longest = max(bars, key=lambda bar: bar[1])
    assert longest[1] > 50, longest  # a chart whose bars are drawn at all
    scale = longest[1] / longest[0]
    for value, length in bars:
        assert abs(length - value * scale) <= 0.5 + 0.005 * length, (value, length, scale)


def test_the_report_of_two_days_in_a_browser_matches_the_tables(
    days: TwoDays, tmp_path: Path, capsys
) -> None:
    report = tmp_path / "report.html"
    assert main(["report", str(days.out), "--source-bucket", BUCKET, "--out", str(report)]) == 0
    assert f"report: {report} (" in capsys.readouterr().out
    size = report.stat().st_size
    assert size < 400 * 1024, size  # a few hundred KB
    with offline_page(report) as opened:
        page = opened.page
        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)
        _keep(screenshot, "report-two-days.png")
        assert (opened.console_errors, opened.requests, opened.failed) == ([], [], [])
        found = charts(page)
        headline = {
            n: figure_value(page, f"headline-{n}")
            for n in ("objects", "bytes", "noncurrent", "delete-markers")
        }
        change = figure_value(page, "headline-bytes-change")
        changes_rows = page.eval_on_selector_all(
            "#changes tbody tr",
            "rows => rows.map(r => [r.cells[0].textContent, ...[...r.cells].slice(1).map(c => c.dataset.value)])",
        )
        reclaimable = figure_value(page, "reclaimable")
        cost = figure_value(page, "cost-total")
        by_tier = page.eval_on_selector_all(
            "#cost-by-tier tbody tr",
            "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].dataset.value])",
        )
        by_prefix_cost = page.eval_on_selector_all(
            "#cost-by-prefix tbody tr", "rows => rows.map(r => r.cells[2].dataset.value)"
        )
        text = page.inner_text("body")

    latest, previous = _parts(days.out, DAY2), _parts(days.out, DAY1)
    objects, stored, noncurrent, markers = _one(
        f"""select count(*) filter (where coalesce(is_latest, true) and not is_delete_marker),
                   coalesce(sum(size::hugeint) filter (where not is_delete_marker), 0),
                   count(*) filter (where not is_latest and not is_delete_marker),
                   count(*) filter (where is_delete_marker)
            from read_parquet('{latest}/*.parquet')"""
    )
    assert headline == {
        "objects": str(objects),
        "bytes": str(stored),
        "noncurrent": str(noncurrent),
        "delete-markers": str(markers),
    }
    [(stored_before,)] = duckdb.sql(
        f"select sum(size::hugeint) from read_parquet('{previous}/*.parquet') where not is_delete_marker"
    ).fetchall()
    assert int(change) == stored - stored_before
    report_json = json.loads((days.out / RunLayout(BUCKET, DAY2).run_report_key).read_text())
    assert f"rows in {report_json['rows_in']:,} = rows out {report_json['rows_out']:,}" in text

    # storage by class over every run: bytes and objects of stored versions, per date and class
    by_class = {
        (day, cls): (n, b)
        for day in (DAY1, DAY2)
        for cls, n, b in duckdb.sql(
            f"select coalesce(storage_class, '(none)'), count(*), sum(size::hugeint) "
            f"from read_parquet('{_parts(days.out, day)}/*.parquet') where not is_delete_marker group by 1"
        ).fetchall()
    }
    for chart_id, index in (("classes-bytes", 1), ("classes-objects", 0)):
        chart = found[chart_id]
        assert chart["labels"] == [DAY1, DAY2]
        drawn = {
            (day, cls): v
            for cls, values in chart["series"].items()
            for day, v in zip(chart["labels"], values, strict=True)
        }
        assert drawn == {k: int(v[index]) for k, v in by_class.items()} | dict.fromkeys(
            drawn.keys() - by_class.keys(), 0
        )
        _check_bars(chart, horizontal=False)

    # where the bytes are: the rollup's largest prefixes at each depth, the rest summed, adding up to the bucket
    rollup = days.out / ROLLUPS_ROOT / "prefix" / f"source_bucket={BUCKET}" / f"run_date={DAY2}"
    depths = [
        d
        for (d,) in duckdb.sql(
            f"select distinct depth from read_parquet('{rollup}/*.parquet') order by 1"
        ).fetchall()
    ]
    assert depths == [1, 2, 3]
    for depth in depths:
        ranked = duckdb.sql(
            f"select prefix, bytes::hugeint from read_parquet('{rollup}/*.parquet') where depth = {depth} "
            "order by bytes desc, prefix"
        ).fetchall()
        chart = found[f"prefixes-depth-{depth}"]
        expected_labels = [p or "(top level)" for p, _ in ranked[:12]]
        expected_values = [int(b) for _, b in ranked[:12]]
        if len(ranked) > 12:
            expected_labels.append(f"other ({len(ranked) - 12:,} prefixes)")
            expected_values.append(sum(int(b) for _, b in ranked[12:]))
        assert chart["labels"] == expected_labels
        assert chart["series"] == {"bytes": expected_values}
        assert sum(expected_values) == stored  # never silently cut
        _check_bars(chart, horizontal=True)

    # age bands by class, from the age rollup
    ages_rollup = days.out / ROLLUPS_ROOT / "age" / f"source_bucket={BUCKET}" / f"run_date={DAY2}"
    ages = {
        (band, cls): int(b)
        for band, cls, b in duckdb.sql(
            f"select age_band, coalesce(storage_class, '(none)'), sum(bytes)::hugeint from read_parquet('{ages_rollup}/*.parquet') group by 1, 2"
        ).fetchall()
    }
    chart = found["ages"]
    drawn = {
        (band, cls): v
        for cls, values in chart["series"].items()
        for band, v in zip(chart["labels"], values, strict=True)
    }
    assert {k: v for k, v in drawn.items() if v} == {k: v for k, v in ages.items() if v}
    _check_bars(chart, horizontal=False)

    # the changes between the two days, and the duplicate candidates' reclaimable bytes
    oracle = changes_by_kind(previous, latest)
    assert {row[0]: tuple(int(v) for v in row[1:]) for row in changes_rows} == {
        kind: oracle.get(kind, (0, 0, 0))
        for kind in ("added", "deleted", "modified", "storage_class_changed")
    }
    assert found["changes-objects"]["series"] == {"objects": [int(row[1]) for row in changes_rows]}
    _check_bars(found["changes-objects"], horizontal=True)
    assert int(reclaimable) == reclaimable_bytes(latest) > 0

    # the monthly cost: bytes per class at the Region's prices, Intelligent-Tiering per access tier
    prices = prices_for("us-east-1")
    tiered = duckdb.sql(
        f"select storage_class, intelligent_tiering_access_tier, sum(size::hugeint) "
        f"from read_parquet('{latest}/*.parquet') where not is_delete_marker group by 1, 2"
    ).fetchall()
    assert {t for c, t, _ in tiered if c == "INTELLIGENT_TIERING"} >= {"FREQUENT", "ARCHIVE_INSTANT_ACCESS"}
    expected_cost = sum(
        int(b) / GIB * (prices.tiering[tier] if cls == "INTELLIGENT_TIERING" else prices.per_gb_month[cls])
        for cls, tier, b in tiered
    )
    assert float(cost) == pytest.approx(expected_cost)  # the raw value, not the rounded text
    assert sorted((r[0], int(r[1])) for r in by_tier) == sorted(
        (tier, int(b)) for cls, tier, b in tiered if cls == "INTELLIGENT_TIERING"
    )
    assert "https://aws.amazon.com/s3/pricing/" in text and f"(as of {prices.as_of})" in text
    _check_bars(found["cost-classes"], horizontal=True)
    assert sum(found["cost-classes"]["series"]["USD"]) == pytest.approx(expected_cost)  # drawn unrounded
    assert sum(float(v) for v in by_prefix_cost) == pytest.approx(
        float(cost)
    )  # the prefixes add up to the total


def test_one_run_only_says_there_are_no_changes_yet(days: TwoDays, tmp_path: Path, capsys) -> None:
    out = tmp_path / "one"
    shutil.copytree(days.out, out)
    for root in (
        "processed",
        "run-reports",
        "run-state",
        "rollups/age",
        "rollups/prefix",
        "rollups/storage_class",
        "rollups/encryption",
    ):
        shutil.rmtree(out / root / f"source_bucket={BUCKET}" / f"run_date={DAY2}", ignore_errors=True)
    shutil.rmtree(out / ".locks", ignore_errors=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    assert main(["report", str(out), "--source-bucket", BUCKET]) == 0
    report = (
        out / RunLayout(BUCKET, DAY1).storage_report_key
    )  # the default place, beside the run's other outputs
    capsys.readouterr()
    with offline_page(report) as opened:
        assert opened.console_errors == []
        assert "One complete run only: no changes to show" in opened.page.inner_text("#no-changes")
        assert opened.page.query_selector("#changes") is None
        assert figure_value(opened.page, "headline-bytes-change") == ""
        assert "first run" in opened.page.inner_text("body")


def test_an_empty_bucket_reports_zeros(tmp_path: Path, capsys) -> None:
    gen = generate_delivery(tmp_path / "bucket", objects=0, files=1, source_bucket="empty-bucket")
    out = tmp_path / "out"
    assert main(["run-local", str(gen.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    report = tmp_path / "empty.html"
    assert main(["report", str(out), "--source-bucket", "empty-bucket", "--out", str(report)]) == 0
    capsys.readouterr()
    with offline_page(report) as opened:
        assert (opened.console_errors, opened.requests) == ([], [])
        assert figure_value(opened.page, "headline-objects") == "0"
        assert figure_value(opened.page, "headline-bytes") == "0"
        assert float(figure_value(opened.page, "cost-total")) == 0


def _flat_delivery(root: Path, bucket: str, keys: int) -> Path:
    """A delivery of ``keys`` objects, each under a prefix of its own: ``p000001/object``, ..."""
    folder = root / "inventory" / bucket / "cfg"
    data_key = f"inventory/{bucket}/cfg/data/all.csv.gz"
    (root / data_key).parent.mkdir(parents=True)
    rows = "".join(
        f'"{bucket}","p{n:06d}/object","{n + 1}","2026-11-20T00:00:00.000Z","STANDARD","{n:032x}"\n'
        for n in range(keys)
    )
    (root / data_key).write_bytes(gzip.compress(rows.encode(), compresslevel=1))
    data = (root / data_key).read_bytes()
    manifest = {
        "sourceBucket": bucket,
        "destinationBucket": "arn:aws:s3:::dest",
        "version": "2016-11-30",
        "creationTimestamp": str(int(datetime(2026, 11, 24, 1, tzinfo=UTC).timestamp() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, StorageClass, ETag",
        "files": [{"key": data_key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()}],
    }
    path = folder / "2026-11-24T01-00Z" / "manifest.json"
    path.parent.mkdir(parents=True)
    raw = json.dumps(manifest).encode()
    path.write_bytes(raw)
    path.with_name("manifest.checksum").write_text(hashlib.md5(raw).hexdigest())
    return path


def test_a_bucket_of_100k_distinct_prefixes_gives_a_small_page_that_opens_fast(
    tmp_path: Path, capsys
) -> None:
    manifest = _flat_delivery(tmp_path / "dest", "wide-bucket", 100_000)
    out = tmp_path / "out"
    assert main(["run-local", str(manifest), "--out", str(out), "--workers", "2"]) == 0
    report = tmp_path / "wide.html"
    assert main(["report", str(out), "--source-bucket", "wide-bucket", "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    size = report.stat().st_size
    assert size < 300 * 1024, size
    with offline_page(report) as opened:
        found = charts(opened.page)
        assert opened.console_errors == []
        assert found["prefixes-depth-1"]["labels"][-1] == "other (99,988 prefixes)"
        total = sum(found["prefixes-depth-1"]["series"]["bytes"])
        assert total == sum(n + 1 for n in range(100_000))
        load_ms = opened.load_ms
    assert load_ms < 3000, load_ms
    print(
        f"100k prefixes: {size / 1024:.0f} KiB, loaded in {load_ms:.0f} ms; {printed.strip().splitlines()[-1]}"
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["report", "{tmp}/nowhere", "--source-bucket", "b"], "OUT {tmp}/nowhere does not exist"),
        (
            ["report", "{out}", "--source-bucket", "other-bucket"],
            f"no run of source bucket 'other-bucket' in {{out}} (it holds runs of {BUCKET})",
        ),
        (
            ["report", "{out}", "--source-bucket", BUCKET, "--region", "mars-north-1"],
            "no S3 prices for Region 'mars-north-1' here",
        ),
        (
            ["report", "{out}", "--source-bucket", BUCKET, "--prices", "{tmp}/bad.json"],
            "--prices {tmp}/bad.json: per_gb_month must map names",
        ),
        (["report", "{out}", "--source-bucket", BUCKET, "--out", "{tmp}"], "--out {tmp} is a folder"),
        (
            ["report", "{out}", "--source-bucket", BUCKET, "--prices", "{tmp}/nan.json"],
            "--prices {tmp}/nan.json: per_gb_month must map names to USD per GB-month (finite numbers",
        ),
        (
            ["report", "{out}", "--source-bucket", BUCKET, "--prices", "{tmp}/null.json"],
            "--prices {tmp}/null.json: tiering must map names to USD per GB-month, got None",
        ),
        (
            ["report", "{out}", "--source-bucket", BUCKET, "--prices", "{tmp}/tiers.json"],
            "--prices {tmp}/tiers.json: tiering names ['ARCHIVE_INSTANT'] are not access tiers the inventory reports",
        ),
    ],
)
def test_wrong_input_is_one_line_and_exit_2(
    days: TwoDays, tmp_path: Path, capsys, argv: list[str], says: str
) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"per_gb_month": {"STANDARD": -1}}))
    (tmp_path / "nan.json").write_text('{"per_gb_month": {"STANDARD": NaN, "GLACIER": Infinity}}')
    (tmp_path / "null.json").write_text('{"per_gb_month": {"STANDARD": 0.023}, "tiering": null}')
    (tmp_path / "tiers.json").write_text(
        '{"per_gb_month": {"STANDARD": 1}, "tiering": {"ARCHIVE_INSTANT": 0.004}}'
    )
    fill = {"tmp": str(tmp_path), "out": str(days.out)}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says.format(**fill) in err, err


def test_a_prices_file_replaces_the_table(days: TwoDays, tmp_path: Path, capsys) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "region": "eu-test-1",
                "source": "our contract",
                "as_of": "2026-12",
                "per_gb_month": {"STANDARD": 1.0, "INTELLIGENT_TIERING": 2.0},
                "tiering": {"FREQUENT": 2.0},
            }
        )
    )
    report = tmp_path / "r.html"
    assert (
        main(
            [
                "report",
                str(days.out),
                "--source-bucket",
                BUCKET,
                "--out",
                str(report),
                "--prices",
                str(prices),
            ]
        )
        == 0
    )
    capsys.readouterr()
    [(standard, tiering)] = duckdb.sql(
        f"select sum(size::hugeint) filter (where storage_class = 'STANDARD'), "
        f"sum(size::hugeint) filter (where storage_class = 'INTELLIGENT_TIERING') "
        f"from read_parquet('{_parts(days.out, DAY2)}/*.parquet') where not is_delete_marker"
    ).fetchall()
    with offline_page(report) as opened:
        # every access tier without a price of its own at the class's: 2 USD a GB-month
        assert float(figure_value(opened.page, "cost-total")) == pytest.approx((standard + 2 * tiering) / GIB)
        body = opened.page.inner_text("body")
    assert "eu-test-1, our contract (as of 2026-12)" in body
    assert "Classes without a price are left out of the total: " in body
    assert "No price for the access tier(s) ARCHIVE_INSTANT_ACCESS, INFREQUENT in these prices" in body


def _page_data(report: Path) -> dict:
    """What a reader gets from a report: every chart's data, every figure and table value."""
    with offline_page(report) as opened:
        assert (opened.console_errors, opened.requests) == ([], [])
        page = opened.page
        figures = page.eval_on_selector_all("[data-value]", "els => els.map(e => [e.id, e.dataset.value])")
        return {"charts": {k: (v["labels"], v["series"]) for k, v in charts(page).items()}, "values": figures}


def _as_the_stacks_bucket(s3, out: Path, bucket: str) -> None:
    """A bucket holding the runs in ``out`` as the jobs leave them on AWS."""
    s3.create_bucket(Bucket=bucket)
    for path in sorted(
        p
        for root in ("processed", "rollups", "run-reports", "run-state")
        for p in (out / root).rglob("*")
        if p.is_file()
    ):
        s3.upload_file(str(path), bucket, path.relative_to(out).as_posix())


def test_the_report_of_the_stacks_bucket_on_s3_equals_the_local_one(
    days: TwoDays, tmp_path: Path, s3, capsys
) -> None:
    _as_the_stacks_bucket(s3, days.out, "report-destination")
    local, remote = tmp_path / "local.html", tmp_path / "remote.html"
    assert main(["report", str(days.out), "--source-bucket", BUCKET, "--out", str(local)]) == 0
    assert main(["report", "s3://report-destination", "--source-bucket", BUCKET, "--out", str(remote)]) == 0
    said = capsys.readouterr()
    assert f"fetching the Parquet parts of {DAY1}, {DAY2} (" in said.err
    assert _page_data(remote) == _page_data(local)

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"destinationBucket": "report-destination"}))
    from_stack = tmp_path / "stack.html"
    assert (
        main(["report", "--outputs", str(outputs), "--source-bucket", BUCKET, "--out", str(from_stack)]) == 0
    )
    assert _page_data(from_stack) == _page_data(local)

    # a rerun of day 2 claimed after its marker: day 2 is left out, the report is day 1's, said so
    layout = RunLayout(BUCKET, DAY2)
    marker = json.loads(
        s3.get_object(Bucket="report-destination", Key=layout.complete_marker_key)["Body"].read()
    )
    claim = {"state": "submitted", "claimed_at": "9999-01-01T00:00:00+00:00", "generation": 2}
    assert marker["completed_at"] < claim["claimed_at"]
    s3.put_object(Bucket="report-destination", Key=layout.claim_key, Body=json.dumps(claim).encode())
    rerun = tmp_path / "rerun.html"
    assert main(["report", "s3://report-destination", "--source-bucket", BUCKET, "--out", str(rerun)]) == 0
    capsys.readouterr()
    with offline_page(rerun) as opened:
        text = opened.page.inner_text("body")
    assert f"Run of {DAY1}" in text and f"{DAY2}: a rerun claimed it after it completed" in text
    assert "One complete run only" in text

    for argv, says in (
        (["report", "s3://report-destination", "--source-bucket", BUCKET], "give --out REPORT.html"),
        (
            ["report", "s3://report-destination", "--source-bucket", "nope", "--out", str(rerun)],
            "no run of source bucket 'nope' in s3://report-destination",
        ),
        (
            ["report", "--source-bucket", BUCKET, "--out", str(rerun)],
            "give one of OUT, s3://DEST, --stack NAME or --outputs FILE (got none)",
        ),
        (
            ["report", "s3://a/b", "--source-bucket", BUCKET, "--out", str(rerun)],
            "'s3://a/b' is not a bucket",
        ),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err


def test_each_run_local_run_writes_its_report_and_the_newest_is_latest(days: TwoDays, tmp_path: Path) -> None:
    # the page run-local wrote after day 2 (as finalize does on AWS) is the page `report` writes
    asked = tmp_path / "asked.html"
    assert main(["report", str(days.out), "--source-bucket", BUCKET, "--out", str(asked)]) == 0
    written = days.out / RunLayout(BUCKET, DAY2).storage_report_key
    latest = days.out / RunLayout(BUCKET, DAY2).latest_storage_report_key
    assert latest.read_bytes() == written.read_bytes()
    assert _page_data(written) == _page_data(asked)
    # day 1's page shows the runs up to day 1 only
    first = _page_data(days.out / RunLayout(BUCKET, DAY1).storage_report_key)
    assert first["charts"]["classes-bytes"][0] == [DAY1]
    assert "changes-objects" not in first["charts"]


def test_a_rerun_of_an_older_day_keeps_the_newest_report_as_latest(days: TwoDays, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(days.out, out, symlinks=True)
    latest = out / RunLayout(BUCKET, DAY2).latest_storage_report_key
    before = _page_data(latest)
    manifest = days.day1.manifest_path
    assert main(["run-local", str(manifest), "--out", str(out), "--workers", "1", "--force"]) == 0
    # day 2 is still the newest complete run: its page (written again, showing the rerun) is latest
    assert _page_data(latest) == before == _page_data(out / RunLayout(BUCKET, DAY2).storage_report_key)
    rewritten = _page_data(out / RunLayout(BUCKET, DAY1).storage_report_key)
    assert rewritten["charts"]["classes-bytes"][0] == [DAY1]


def test_days_converted_out_of_order_leave_the_newest_page_as_latest(days: TwoDays, tmp_path: Path) -> None:
    # a backfill: day 2 completes first, then day 1
    out = tmp_path / "out"
    for manifest in (days.day2.delivery.manifest_path, days.day1.manifest_path):
        assert main(["run-local", str(manifest), "--out", str(out), "--workers", "1"]) == 0
    latest = _page_data(out / RunLayout(BUCKET, DAY2).latest_storage_report_key)
    assert latest["charts"]["classes-bytes"][0] == [DAY1, DAY2]  # both runs, day 2's page
    assert "changes-objects" in latest["charts"]
    assert latest == _page_data(out / RunLayout(BUCKET, DAY2).storage_report_key)
    assert latest == _page_data(days.out / RunLayout(BUCKET, DAY2).storage_report_key)  # as in order


def test_a_report_that_cannot_be_written_leaves_the_run_complete_and_says_why(tmp_path: Path, capsys) -> None:
    delivery = generate_delivery(tmp_path / "bucket", objects=200, files=1, source_bucket=BUCKET)
    out = tmp_path / "out"
    out.mkdir()
    (out / "reports").write_text("a file where the reports folder goes\n")
    assert main(["run-local", str(delivery.manifest_path), "--out", str(out), "--workers", "1"]) == 0
    layout = RunLayout(BUCKET, delivery.delivery.run_date)
    assert json.loads((out / layout.complete_marker_key).read_text())["rows"] == delivery.truth.rows
    log = out / "logs" / layout.partition / "report.log"
    assert f"storage report not written: see {log}" in capsys.readouterr().err
    [failed] = [json.loads(line) for line in log.read_text().splitlines() if '"ERROR"' in line]
    assert failed["message"] == "storage report not written; the run is complete"
    assert failed["write_it_with"] == (
        f"python -m pipeline report {out} --source-bucket {BUCKET} --run-date {delivery.delivery.run_date}"
    )
    # which writes the page where run-local would have
    (out / "reports").unlink()
    assert main(failed["write_it_with"].split()[3:]) == 0
    assert (out / layout.storage_report_key).is_file()
    assert not (out / ".scratch").exists()


def test_changes_past_the_tasks_limit_are_left_out_and_said_so(days: TwoDays, tmp_path: Path) -> None:
    from batch_jobs.report_figures import store_figures
    from batch_jobs.report_page import render
    from batch_jobs.storage import LocalStorage

    rows = sum(
        json.loads((days.out / RunLayout(BUCKET, d).complete_marker_key).read_text())["rows"]
        for d in (DAY1, DAY2)
    )
    store = LocalStorage("dest", days.out)
    figures = store_figures(store, BUCKET, changes_max_rows=rows - 1)
    assert (figures.changes, figures.candidates) == (None, None)
    assert f"the last two runs hold {rows:,} rows, more than the {rows - 1:,}" in (
        figures.changes_left_out or ""
    )
    page = tmp_path / "limited.html"
    page.write_text(render(figures, prices_for("us-east-1"), source="test"))
    with offline_page(page) as opened:
        said = opened.page.inner_text("#changes-left-out")
    assert said.startswith("Changes and duplicate candidates not computed: the last two runs hold")
    assert store_figures(store, BUCKET, changes_max_rows=rows).changes is not None  # at the limit: computed


def test_a_report_that_cannot_be_written_is_one_line_and_leaves_nothing(
    days: TwoDays, tmp_path: Path, capsys
) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    target = tmp_path / "a-file" / "report.html"
    assert main(["report", str(days.out), "--source-bucket", BUCKET, "--out", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {target}: cannot write the report: " in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_default_region_without_prices_leaves_the_costs_out(
    days: TwoDays, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    report = tmp_path / "report.html"
    assert main(["report", str(days.out), "--source-bucket", BUCKET, "--out", str(report)]) == 0
    capsys.readouterr()
    with offline_page(report) as opened:
        said = opened.page.inner_text("#no-costs")
        assert opened.page.query_selector("#cost-total") is None
    assert "no S3 prices for Region 'eu-west-3'" in said
    # the same Region asked for by name is refused: the user meant prices
    assert (
        main(
            [
                "report",
                str(days.out),
                "--source-bucket",
                BUCKET,
                "--out",
                str(report),
                "--region",
                "eu-west-3",
            ]
        )
        == 2
    )
    assert "no S3 prices for Region 'eu-west-3'" in capsys.readouterr().err


def test_a_run_whose_rollup_tables_are_gone_is_left_out_of_the_s3_report(
    days: TwoDays, tmp_path: Path, s3, capsys
) -> None:
    _as_the_stacks_bucket(s3, days.out, "report-gone")
    gone = RunLayout(BUCKET, DAY1).rollup_key("age")
    s3.delete_object(Bucket="report-gone", Key=gone)
    report = tmp_path / "report.html"
    assert main(["report", "s3://report-gone", "--source-bucket", BUCKET, "--out", str(report)]) == 0
    capsys.readouterr()
    with offline_page(report) as opened:
        text = opened.page.inner_text("body")
    assert f"{DAY1}: its rollup tables cannot be read (s3://report-gone/{gone} does not exist)" in text
    assert f"Run of {DAY2}" in text and "One complete run only" in text  # day 1 is left out


def test_report_stack_without_the_pulumi_cli_names_what_report_takes_instead(
    monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi here
    assert (
        main(["report", "--stack", "dev", "--source-bucket", BUCKET, "--out", str(tmp_path / "r.html")]) == 2
    )
    err = capsys.readouterr().err
    assert "the pulumi CLI is not on PATH" in err and err.rstrip().endswith("or s3://DEST")


def test_a_part_rewritten_since_its_marker_leaves_the_changes_out(
    days: TwoDays, tmp_path: Path, s3, capsys
) -> None:
    # a rerun of day 2 writing its parts in place while the page is drawn: the marker lists other sizes
    _as_the_stacks_bucket(s3, days.out, "report-rewritten")
    part = RunLayout(BUCKET, DAY2).part_key(0)
    s3.put_object(Bucket="report-rewritten", Key=part, Body=b"PAR1 being written again")
    report = tmp_path / "report.html"
    assert main(["report", "s3://report-rewritten", "--source-bucket", BUCKET, "--out", str(report)]) == 0
    capsys.readouterr()
    page = report.read_text()
    assert f"s3://report-rewritten/{part} is 24 bytes, not the " in page and "a rerun is writing it" in page
    assert 'id="changes"' not in page and 'id="reclaimable"' not in page
