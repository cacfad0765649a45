use proptest::prelude::*;
use runnel_engine::window::kind::WindowKind;

use crate::support::{Row, batch_of, oracle, run_windowed};

/// Rows in an arrival order that is out of order by less than `bound`: each
/// row arrives as if at `ts + jitter` with `jitter < bound`.
fn arrival_order(rows: &[Row], jitters: &[i64]) -> Vec<Row> {
    let mut order: Vec<(i64, usize)> = rows
        .iter()
        .zip(jitters)
        .enumerate()
        .map(|(i, (r, j))| (r.1 + j, i))
        .collect();
    order.sort();
    order.into_iter().map(|(_, i)| rows[i]).collect()
}

fn split(rows: &[Row], batch_rows: usize) -> Vec<datafusion::arrow::array::RecordBatch> {
    rows.chunks(batch_rows.max(1)).map(batch_of).collect()
}

fn kinds() -> impl Strategy<Value = WindowKind> {
    prop_oneof![
        (1i64..200).prop_map(|size| WindowKind::tumble(size).unwrap()),
        (1i64..60, 1i64..5).prop_map(|(slide, n)| WindowKind::hop(slide, slide * n).unwrap()),
        (1i64..60, 1i64..5).prop_map(|(step, n)| WindowKind::cumulate(step, step * n).unwrap()),
        (1i64..100).prop_map(|gap| WindowKind::session(gap).unwrap()),
    ]
}

fn rows_and_jitter() -> impl Strategy<Value = (Vec<Row>, i64, Vec<i64>)> {
    (
        prop::collection::vec((0i64..6, 0i64..2000, -100i64..100), 1..160),
        1i64..80,
    )
        .prop_flat_map(|(rows, bound)| {
            let n = rows.len();
            (Just(rows), Just(bound), prop::collection::vec(0..bound, n))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Same result for any worker count, batch split and arrival order
    /// within the watermark bound, and that result is DataFusion's batch answer.
    #[test]
    fn windowed_results_match_batch_for_any_workers_split_and_order(
        (rows, bound, jitters) in rows_and_jitter(),
        kind in kinds(),
        workers in 1usize..4,
        batch_rows in 1usize..40,
    ) {
        let arrived = arrival_order(&rows, &jitters);
        let output = run_windowed(split(&arrived, batch_rows), kind, workers, bound);
        prop_assert_eq!(output.late_records, 0);
        prop_assert_eq!(output.rows, oracle(&rows, kind));
    }
}

#[test]
fn rows_later_than_the_watermark_are_counted_and_dropped() {
    let kind = WindowKind::tumble(10).unwrap();
    // With no allowed lateness, ts=3 arriving after ts=25 is late.
    let batches = vec![
        batch_of(&[(1, 1, 5), (1, 25, 7)]),
        batch_of(&[(1, 3, 100)]),
        batch_of(&[(1, 27, 1)]),
    ];
    let output = run_windowed(batches, kind, 1, 0);
    assert_eq!(output.late_records, 1);
    assert_eq!(
        output.rows,
        oracle(&[(1, 1, 5), (1, 25, 7), (1, 27, 1)], kind)
    );
}

#[test]
fn windows_before_the_epoch_fire_too() {
    let kind = WindowKind::hop(5, 10).unwrap();
    let rows = [(2, -12, 1), (2, -3, 2), (3, 4, 3)];
    let output = run_windowed(vec![batch_of(&rows)], kind, 2, 100);
    assert_eq!(output.rows, oracle(&rows, kind));
}

#[test]
fn sessions_that_touch_merge_as_in_flink() {
    let kind = WindowKind::session(10).unwrap();
    // Key 1's rows at 0 and exactly the gap later, at 10, share a session
    // (Flink merges windows that touch). The row at 10 arrives once the
    // watermark (bound 10, key 2's rows at 20) has reached 10, the first
    // session's end: on time, so that session must still be open. The
    // source yields after 16 batches, so with 40 batches between them the
    // operator runs with that watermark before the row comes.
    let mut rows = vec![(1, 0, 1)];
    rows.extend(std::iter::repeat_n((2, 20, 2), 40));
    rows.push((1, 10, 4));
    let batches = rows.iter().map(|r| batch_of(&[*r])).collect();
    let output = run_windowed(batches, kind, 1, 10);
    assert_eq!(output.rows, oracle(&rows, kind));
    assert!(
        output.rows.iter().any(|r| r.starts_with("0,20,1,2,")),
        "{:?}",
        output.rows
    );
}

#[test]
fn sessions_merge_when_a_row_bridges_two_of_them() {
    let kind = WindowKind::session(10).unwrap();
    // 0 and 15 are separate sessions until 8 arrives and bridges them.
    let rows = [(1, 0, 1), (1, 15, 2), (1, 8, 4), (1, 40, 8), (2, 3, 16)];
    let output = run_windowed(
        vec![batch_of(&rows[..2]), batch_of(&rows[2..])],
        kind,
        1,
        100,
    );
    assert_eq!(output.rows, oracle(&rows, kind));
    assert!(
        output.rows.iter().any(|r| r.starts_with("0,25,1,3,")),
        "{:?}",
        output.rows
    );
}
