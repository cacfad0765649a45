//! The nexmark generator: determinism, the event mix, ids, the split
//! across workers, event times, and JSON export read back by the
//! filesystem source.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, StructArray};
use datafusion::arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_connectors::nexmark::{Nexmark, schema, write_json_lines};
use runnel_engine::source::Poll;

const BASE: i64 = 1_577_836_800_000;

fn generator(pairs: &[(&str, &str)]) -> Nexmark {
    Nexmark::from_pairs(pairs).unwrap()
}

fn batches(generator: &Nexmark, worker: usize, peers: usize) -> Vec<RecordBatch> {
    let mut reader = generator.events(worker, peers);
    let mut out = Vec::new();
    while let Some(batch) = reader.next_batch().unwrap() {
        out.push(batch);
    }
    out
}

fn json_lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut bytes = Vec::new();
    for batch in batches {
        write_json_lines(batch, &mut bytes).unwrap();
    }
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn field<'a>(row: &'a StructArray, name: &str) -> &'a dyn Array {
    row.column_by_name(name).unwrap().as_ref()
}

fn long(row: &StructArray, name: &str, i: usize) -> i64 {
    field(row, name).as_primitive::<Int64Type>().value(i)
}

fn time(row: &StructArray, name: &str, i: usize) -> i64 {
    field(row, name)
        .as_primitive::<TimestampMillisecondType>()
        .value(i)
}

fn text<'a>(row: &'a StructArray, name: &str, i: usize) -> &'a str {
    field(row, name).as_string::<i32>().value(i)
}

#[test]
fn a_seed_gives_the_same_events_and_another_seed_others() {
    let one = json_lines(&batches(&generator(&[("events.num", "20000")]), 0, 1));
    let again = json_lines(&batches(&generator(&[("events.num", "20000")]), 0, 1));
    let other = json_lines(&batches(
        &generator(&[("events.num", "20000"), ("seed", "7")]),
        0,
        1,
    ));
    assert_eq!(one.len(), 20000);
    assert_eq!(one, again);
    assert_ne!(one, other);
}

#[test]
fn the_mix_ids_and_values_follow_flinks_generator() {
    let events = 100_000u64;
    let rate = 1000.0;
    let all = batches(
        &generator(&[("events.num", "100000"), ("first-event.rate", "1000")]),
        0,
        1,
    );
    let (mut people, mut auctions, mut bids) = (0, 0, 0);
    let mut n = 0u64;
    let mut bid_sizes = 0usize;
    for batch in &all {
        let kinds = batch.column(0).as_primitive::<Int32Type>();
        let person = batch.column(1).as_struct();
        let auction = batch.column(2).as_struct();
        let bid = batch.column(3).as_struct();
        for i in 0..batch.num_rows() {
            // Event times come from the event number and the rate only.
            let expected_time = BASE + (n as f64 * 1e6 / rate) as i64 / 1000;
            let epoch = (n / 50) as i64;
            match kinds.value(i) {
                0 => {
                    people += 1;
                    assert_eq!(n % 50, 0);
                    assert!(auction.is_null(i) && bid.is_null(i) && person.is_valid(i));
                    assert_eq!(long(person, "id", i), 1000 + epoch);
                    assert_eq!(time(person, "dateTime", i), expected_time);
                    assert!(
                        ["AZ", "CA", "ID", "OR", "WA", "WY"].contains(&text(person, "state", i))
                    );
                    assert!(text(person, "emailAddress", i).ends_with(".com"));
                    assert_eq!(text(person, "creditCard", i).len(), 19);
                }
                1 => {
                    auctions += 1;
                    assert!((1..=3).contains(&(n % 50)));
                    assert!(person.is_null(i) && bid.is_null(i));
                    let id = long(auction, "id", i);
                    assert_eq!(id, 1000 + 3 * epoch + (n % 50) as i64 - 1);
                    assert!((10..15).contains(&long(auction, "category", i)));
                    let seller = long(auction, "seller", i);
                    assert!(
                        (1000..=1000 + epoch + 10).contains(&seller),
                        "seller {seller}"
                    );
                    let created = time(auction, "dateTime", i);
                    assert_eq!(created, expected_time);
                    assert!(time(auction, "expires", i) > created);
                    let initial = long(auction, "initialBid", i);
                    assert!((100..=100_000_000).contains(&initial));
                    assert!(long(auction, "reserve", i) > initial);
                }
                2 => {
                    bids += 1;
                    assert!(n % 50 >= 4);
                    assert!(person.is_null(i) && auction.is_null(i));
                    let last_auction = 1000 + 3 * epoch + 2;
                    let a = long(bid, "auction", i);
                    assert!(
                        (1000..=last_auction + 10).contains(&a),
                        "auction {a} at {n}"
                    );
                    let bidder = long(bid, "bidder", i);
                    assert!(
                        (1000..=1000 + epoch + 10).contains(&bidder),
                        "bidder {bidder}"
                    );
                    assert!((100..=100_000_000).contains(&long(bid, "price", i)));
                    assert_eq!(time(bid, "dateTime", i), expected_time);
                    let url = text(bid, "url", i);
                    assert!(url.starts_with("https://www.nexmark.com/"), "{url}");
                    assert!(url.contains("/item.htm?query=1"), "{url}");
                    let channel = text(bid, "channel", i);
                    assert!(
                        ["Google", "Facebook", "Baidu", "Apple"].contains(&channel)
                            || channel.starts_with("channel-"),
                        "{channel}"
                    );
                    bid_sizes += 32 + text(bid, "extra", i).len();
                }
                other => panic!("event type {other}"),
            }
            n += 1;
        }
    }
    assert_eq!(n, events);
    assert_eq!((people, auctions, bids), (2000, 6000, 92000));
    // `extra` pads a bid to 100 bytes on average (Flink's bid.avg-size).
    let average = bid_sizes as f64 / bids as f64;
    assert!(
        (95.0..105.0).contains(&average),
        "average bid size {average}"
    );
}

#[test]
fn hot_auctions_and_bidders_take_their_share() {
    let all = batches(&generator(&[("events.num", "50000")]), 0, 1);
    let (mut bids, mut hot_auction, mut hot_bidder) = (0, 0, 0);
    for batch in &all {
        let bid = batch.column(3).as_struct();
        for i in 0..batch.num_rows() {
            if bid.is_valid(i) {
                bids += 1;
                // Hot ids are multiples of 100 (bidders: plus one).
                hot_auction += ((long(bid, "auction", i) - 1000) % 100 == 0) as u32;
                hot_bidder += ((long(bid, "bidder", i) - 1000) % 100 == 1) as u32;
            }
        }
    }
    let share = |n: u32| n as f64 / bids as f64;
    // About 1/2 and 3/4: the first draws of java.util.Random seeded with
    // consecutive event ids are not quite uniform, in Flink's data too.
    assert!(
        (0.44..0.56).contains(&share(hot_auction)),
        "{}",
        share(hot_auction)
    );
    assert!(
        (0.70..0.80).contains(&share(hot_bidder)),
        "{}",
        share(hot_bidder)
    );
}

#[test]
fn workers_split_the_events_without_gaps_or_repeats() {
    let options = [("events.num", "30000")];
    let mut expected = json_lines(&batches(&generator(&options), 0, 1));
    expected.sort();
    for peers in [2, 3] {
        let generator = generator(&options);
        let mut lines: Vec<String> = (0..peers)
            .flat_map(|w| json_lines(&batches(&generator, w, peers)))
            .collect();
        lines.sort();
        assert_eq!(lines, expected, "{peers} workers");
    }
}

#[test]
fn the_engine_reads_the_same_events_a_batch_per_kind() {
    // A slow rate makes blocks shorter than 8192 events (2 s of event time).
    let options = [("events.num", "30000"), ("first-event.rate", "3000")];
    let mut expected = json_lines(&batches(&generator(&options), 0, 1));
    expected.sort();
    for peers in [1, 2, 3] {
        let generator = generator(&options);
        let mut lines = Vec::new();
        for worker in 0..peers {
            let mut reader = generator.events_by_kind(worker, peers);
            let mut latest = i64::MIN;
            while let Some(batch) = reader.next_batch().unwrap() {
                let kinds = batch.column(0).as_primitive::<Int32Type>();
                let kind = kinds.value(0);
                assert!(kinds.values().iter().all(|k| *k == kind));
                // No event is older than the 4 s watermark bound allows.
                let row = batch.column(1 + kind as usize).as_struct();
                for i in 0..batch.num_rows() {
                    let t = time(row, "dateTime", i);
                    assert!(
                        t > latest.saturating_sub(4000),
                        "late event at {t}, seen {latest}"
                    );
                    latest = latest.max(t);
                }
                lines.extend(json_lines(&[batch]));
            }
        }
        lines.sort();
        assert_eq!(lines, expected, "{peers} workers");
    }
}

#[test]
fn a_square_rate_alternates_first_and_next_rates() {
    let all = batches(
        &generator(&[
            ("events.num", "3000"),
            ("first-event.rate", "1000"),
            ("next-event.rate", "500"),
            ("rate.period", "2 s"),
        ]),
        0,
        1,
    );
    let times: Vec<i64> = all
        .iter()
        .flat_map(|b| {
            let kinds = b.column(0).as_primitive::<Int32Type>().clone();
            let rows: Vec<(i32, RecordBatch)> = (0..b.num_rows())
                .map(|i| (kinds.value(i), b.slice(i, 1)))
                .collect();
            rows.into_iter().map(|(kind, row)| {
                let column = row.column(1 + kind as usize).as_struct().clone();
                time(&column, "dateTime", 0)
            })
        })
        .collect();
    // 1 s at 1000/s, then 1 s at 500/s: event 1000 starts the slow second,
    // event 1500 starts the next period.
    assert_eq!(times[999] - BASE, 999);
    assert_eq!(times[1000] - BASE, 1000);
    assert_eq!(times[1002] - BASE, 1004);
    assert_eq!(times[1500] - BASE, 2000);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn unknown_options_and_other_columns_are_rejected() {
    let error = Nexmark::from_pairs(&[("events.nmu", "5")])
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("events.nmu"), "{error}");
    let error = Nexmark::from_pairs(&[("first-event.rate", "0")])
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("first-event.rate"), "{error}");
    let options: BTreeMap<String, String> = [("connector", "nexmark")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let narrow = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "event_type",
            datafusion::arrow::datatypes::DataType::Int32,
            true,
        ),
    ]));
    let error = runnel_connectors::source_provider(options, narrow)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("nexmark columns"), "{error}");
}

#[test]
fn exported_json_reads_back_through_the_filesystem_source() {
    let generated = batches(&generator(&[("events.num", "10000")]), 0, 1);
    let lines = json_lines(&generated);
    assert_eq!(lines.len(), 10000);
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value["event_type"].is_i64(), "{line}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let options: BTreeMap<String, String> = [
        ("connector", "filesystem"),
        ("path", path.to_str().unwrap()),
        ("format", "json"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let source = runnel_connectors::source_provider(options, schema()).unwrap();
    let mut reader = source.reader(0, 1).unwrap();
    let mut read = Vec::new();
    for _ in 0..100_000 {
        match reader.poll().unwrap() {
            Poll::Batch(batch) => read.push(batch),
            Poll::Idle => std::thread::sleep(Duration::from_millis(1)),
            Poll::Done => break,
        }
    }
    assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 10000);
    assert_eq!(read[0].schema(), schema());
    assert_eq!(json_lines(&read), lines);
}
