//! Runnel's own grouped states against DataFusion's accumulators, one per
//! group, fed the same rows in any batch split.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::functions_aggregate::{
    average::avg_udaf,
    count::count_udaf,
    min_max::{max_udaf, min_udaf},
    sum::sum_udaf,
};
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::col;
use proptest::prelude::*;

use super::{GroupedAccumulator, Rows, distinct, own, per_group::PerGroup};

/// (group, value, FILTER)
type Row = (u32, Option<i64>, Option<bool>);

/// (function, DISTINCT, column): `v` BIGINT, `s` its text, `f` its DOUBLE.
const CASES: &[(&str, bool, &str)] = &[
    ("count", false, "v"),
    ("count", true, "v"),
    ("count", true, "s"),
    ("sum", false, "v"),
    ("sum", false, "f"),
    ("avg", false, "f"),
    ("min", false, "v"),
    ("max", false, "v"),
    ("min", false, "s"),
    ("max", false, "s"),
];

/// The cases whose state can take rows back.
const TAKING_BACK: &[usize] = &[0, 1, 2, 3, 4, 5];

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("f", DataType::Float64, true),
    ]))
}

fn aggregate(case: usize) -> Arc<AggregateFunctionExpr> {
    let (name, distinct, column) = CASES[case];
    let fun = match name {
        "count" => count_udaf(),
        "sum" => sum_udaf(),
        "avg" => avg_udaf(),
        "min" => min_udaf(),
        _ => max_udaf(),
    };
    let schema = schema();
    Arc::new(
        AggregateExprBuilder::new(fun, vec![col(column, &schema).expect("column")])
            .schema(schema)
            .alias("a")
            .with_distinct(distinct)
            .build()
            .expect("aggregate"),
    )
}

fn states(case: usize, takes_back: bool) -> (Box<dyn GroupedAccumulator>, PerGroup) {
    let aggregate = aggregate(case);
    let column = CASES[case].2;
    let types = [schema()
        .field_with_name(column)
        .expect("field")
        .data_type()
        .clone()];
    let own = own(&aggregate, &types, takes_back).expect("a state of Runnel's own");
    (own, PerGroup::new(aggregate, false))
}

fn arguments(rows: &[Row], case: usize) -> Vec<ArrayRef> {
    let values: Int64Array = rows.iter().map(|r| r.1).collect();
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(values.clone()),
            Arc::new(
                rows.iter()
                    .map(|r| r.1.map(|v| format!("x{v}")))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| r.1.map(|v| v as f64))
                    .collect::<Float64Array>(),
            ),
        ],
    )
    .expect("batch");
    vec![batch.column_by_name(CASES[case].2).expect("column").clone()]
}

fn feed(
    state: &mut dyn GroupedAccumulator,
    rows: &[Row],
    diffs: Option<&[isize]>,
    case: usize,
    filtered: bool,
    group_count: usize,
) {
    let groups: Vec<u32> = rows.iter().map(|r| r.0).collect();
    let mask: BooleanArray = rows.iter().map(|r| r.2).collect();
    let rows_seen = Rows {
        groups: &groups,
        filters: &[filtered.then_some(&mask)],
        diffs,
        group_count,
    };
    state
        .update(&arguments(rows, case), &rows_seen)
        .expect("update");
}

fn all(state: &mut dyn GroupedAccumulator, group_count: usize) -> Vec<ArrayRef> {
    let groups: Vec<u32> = (0..group_count as u32).collect();
    state.evaluate(&groups).expect("evaluate")
}

fn rows(len: usize) -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (
            0u32..6,
            prop::option::weighted(0.85, -8i64..8),
            prop::option::weighted(0.9, any::<bool>()),
        ),
        0..len,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Append-only: after every batch, and after forgetting some groups,
    /// every group's result is DataFusion's.
    #[test]
    fn own_states_match_datafusion_accumulators(
        rows in rows(60),
        cuts in prop::collection::vec(0usize..60, 0..5),
        later in rows(20),
        keep in prop::collection::vec(any::<bool>(), 6),
        case in 0..CASES.len(),
        filtered in any::<bool>(),
    ) {
        let (mut own, mut reference) = states(case, false);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(rows.len())).collect();
        cuts.push(0);
        cuts.push(rows.len());
        cuts.sort();
        let mut groups = 0;
        for batch in cuts.windows(2).map(|w| &rows[w[0]..w[1]]) {
            groups = batch.iter().map(|r| r.0 as usize + 1).fold(groups, usize::max);
            feed(own.as_mut(), batch, None, case, filtered, groups);
            feed(&mut reference, batch, None, case, filtered, groups);
            prop_assert_eq!(all(own.as_mut(), groups), all(&mut reference, groups), "{:?}", CASES[case]);
        }
        let keep = &keep[..groups];
        own.retain(keep);
        reference.retain(keep);
        let groups = keep.iter().filter(|&&k| k).count().max(1);
        let later: Vec<Row> = later.into_iter().map(|r| (r.0 % groups as u32, r.1, r.2)).collect();
        feed(own.as_mut(), &later, None, case, filtered, groups);
        feed(&mut reference, &later, None, case, filtered, groups);
        prop_assert_eq!(all(own.as_mut(), groups), all(&mut reference, groups), "{:?}", CASES[case]);
    }

    /// A changelog: rows come and some go again in a later batch; after
    /// every batch each group's result is DataFusion's over the rows left.
    #[test]
    fn own_states_take_rows_back(
        rows in prop::collection::vec(
            ((0u32..4, prop::option::weighted(0.85, -5i64..5), prop::option::weighted(0.9, any::<bool>())),
             0usize..4, prop::option::of(1usize..3)),
            0..50,
        ),
        which in 0..TAKING_BACK.len(),
        filtered in any::<bool>(),
    ) {
        let case = TAKING_BACK[which];
        let (mut own, _) = states(case, true);
        let groups = 4;
        for batch in 0..7 {
            let mut changes: Vec<Row> = Vec::new();
            let mut diffs: Vec<isize> = Vec::new();
            for (row, inserted, retracted_after) in &rows {
                if *inserted == batch {
                    changes.push(*row);
                    diffs.push(1);
                }
                if retracted_after.is_some_and(|after| inserted + after == batch) {
                    changes.push(*row);
                    diffs.push(-1);
                }
            }
            feed(own.as_mut(), &changes, Some(&diffs), case, filtered, groups);
            let left: Vec<Row> = rows
                .iter()
                .filter(|(_, inserted, after)| {
                    *inserted <= batch && after.is_none_or(|a| inserted + a > batch)
                })
                .map(|r| r.0)
                .collect();
            let mut reference = PerGroup::new(aggregate(case), false);
            feed(&mut reference, &left, None, case, filtered, groups);
            prop_assert_eq!(all(own.as_mut(), groups), all(&mut reference, groups), "{:?}", CASES[case]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// COUNT DISTINCTs of one argument under different FILTERs, sharing one
    /// table, count as each would alone.
    #[test]
    fn shared_distinct_counts_match_each_alone(
        rows in prop::collection::vec(
            (0u32..5, prop::option::weighted(0.85, -8i64..8), any::<u8>(), any::<bool>()),
            0..60,
        ),
        cut in 0usize..60,
        results in 1usize..5,
        unfiltered_first in any::<bool>(),
        case in prop::sample::select(vec![1usize, 2]),
    ) {
        let column = CASES[case].2;
        let data_type = schema().field_with_name(column).expect("field").data_type().clone();
        let mut shared = distinct::for_type(&data_type, results, false).expect("shared state");
        let mut alone: Vec<PerGroup> = (0..results).map(|_| PerGroup::new(aggregate(case), false)).collect();
        let cut = cut.min(rows.len());
        let mut groups = 0;
        for batch in [&rows[..cut], &rows[cut..]] {
            groups = batch.iter().map(|r| r.0 as usize + 1).fold(groups, usize::max);
            let group_of: Vec<u32> = batch.iter().map(|r| r.0).collect();
            // Result i's FILTER is bit i (NULL where the row's flag says so).
            let masks: Vec<BooleanArray> = (0..results)
                .map(|i| batch.iter().map(|r| (!r.3 || i != 1).then_some(r.2 >> i & 1 == 1)).collect())
                .collect();
            let filters: Vec<Option<&BooleanArray>> = masks
                .iter()
                .enumerate()
                .map(|(i, m)| (i > 0 || !unfiltered_first).then_some(m))
                .collect();
            let as_rows: Vec<Row> = batch.iter().map(|r| (r.0, r.1, None)).collect();
            let arguments = arguments(&as_rows, case);
            shared.update(&arguments, &Rows { groups: &group_of, filters: &filters, diffs: None, group_count: groups }).expect("update");
            for (state, filter) in alone.iter_mut().zip(&filters) {
                state.update(&arguments, &Rows { groups: &group_of, filters: &[*filter], diffs: None, group_count: groups }).expect("update");
            }
            let expected: Vec<ArrayRef> = alone.iter_mut().flat_map(|s| all(s, groups)).collect();
            prop_assert_eq!(all(shared.as_mut(), groups), expected);
        }
    }
}

/// Runnel's own state for `case`, or DataFusion's accumulators for it.
fn fresh(case: usize, takes_back: bool, own: bool) -> Box<dyn GroupedAccumulator> {
    if own {
        states(case, takes_back).0
    } else {
        Box::new(PerGroup::new(aggregate(case), takes_back))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// A state restored from a snapshot gives the same results as the one
    /// snapshotted, then and after more rows; snapshotting leaves a state
    /// as it was. For Runnel's own states and DataFusion's accumulators,
    /// adding rows only or taking some back.
    #[test]
    fn states_restored_from_a_snapshot_go_on_as_the_original(
        rows in rows(40),
        taken_back in 0usize..40,
        later in rows(20),
        case in 0..CASES.len(),
        takes_back in any::<bool>(),
        own in any::<bool>(),
        filtered in any::<bool>(),
    ) {
        let groups = 6;
        let takes_back = takes_back && TAKING_BACK.contains(&case);
        let mut original = fresh(case, takes_back, own);
        feed(original.as_mut(), &rows, None, case, filtered, groups);
        if takes_back {
            let gone = &rows[..taken_back.min(rows.len())];
            let diffs = vec![-1; gone.len()];
            feed(original.as_mut(), gone, Some(&diffs), case, filtered, groups);
        }
        if original.checkpoint_refusal().is_some() {
            prop_assert!(original.snapshot(groups).is_err());
            return Ok(());
        }
        let before = all(original.as_mut(), groups);
        let bytes = original.snapshot(groups).expect("snapshot");
        let mut restored = fresh(case, takes_back, own);
        restored.restore(&bytes, groups).expect("restore");
        prop_assert_eq!(all(original.as_mut(), groups), before.clone(), "{:?}", CASES[case]);
        prop_assert_eq!(all(restored.as_mut(), groups), before, "{:?}", CASES[case]);
        feed(original.as_mut(), &later, None, case, filtered, groups);
        feed(restored.as_mut(), &later, None, case, filtered, groups);
        prop_assert_eq!(all(restored.as_mut(), groups), all(original.as_mut(), groups));
        prop_assert!(fresh(case, takes_back, own).restore(&bytes, groups + 1).is_err());
    }
}

/// Floats' MIN/MAX and COUNT DISTINCT stay with DataFusion (NaN, -0.0).
#[test]
fn floats_keep_datafusion_extremes_and_distinct_counts() {
    let schema = schema();
    for fun in [min_udaf(), max_udaf(), count_udaf()] {
        let aggregate = AggregateExprBuilder::new(fun, vec![col("f", &schema).expect("f")])
            .schema(schema.clone())
            .alias("a")
            .with_distinct(true)
            .build()
            .expect("aggregate");
        assert!(own(&aggregate, &[DataType::Float64], false).is_none());
    }
}
