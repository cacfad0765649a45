use super::lines::*;
use super::timestamp::*;
use datafusion::arrow::array::{Array, AsArray, Int32Array, StructArray, new_null_array};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::datatypes::{DataType, Field, Fields, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use runnel_engine::connector::KeepOnly;
use std::sync::Arc;

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("small", DataType::Int8, true),
        Field::new("u", DataType::UInt32, true),
        Field::new("f", DataType::Float64, true),
        Field::new("g", DataType::Float32, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("ts", ts.clone(), true),
        Field::new("us", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new(
            "r",
            DataType::Struct(Fields::from(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
                Field::new("at", ts, true),
            ])),
            true,
        ),
        Field::new("required", DataType::Int32, false),
    ]))
}

/// arrow-json's answer: the batches concatenated, or `None` for an error.
fn arrow(schema: &SchemaRef, lines: &[u8]) -> Option<RecordBatch> {
    let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(8192)
        .build_decoder()
        .ok()?;
    let mut batches = Vec::new();
    let mut rest = lines;
    while !rest.is_empty() {
        let used = decoder.decode(rest).ok()?;
        if used == 0 {
            return None;
        }
        rest = &rest[used..];
    }
    batches.extend(decoder.flush().ok()?);
    concat_batches(schema, &batches).ok()
}

/// Whenever the fast decoder answers, arrow-json gives the same rows.
fn agrees(lines: &[u8]) -> Result<bool, TestCaseError> {
    let schema = schema();
    let mut fast = JsonLines::new(schema.clone(), 3).expect("supported schema");
    let Some(batches) = fast.decode(lines) else {
        return Ok(false);
    };
    let fast = concat_batches(&schema, &batches).expect("same schema");
    let slow = arrow(&schema, lines);
    prop_assert_eq!(
        Some(&fast),
        slow.as_ref(),
        "input: {}",
        String::from_utf8_lossy(lines)
    );
    Ok(true)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (-300i64..300).prop_map(|v| v.to_string()),
        any::<u32>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
        Just("01".to_string()),
        Just("-0".to_string()),
        Just("1.".to_string()),
        any::<bool>().prop_map(|v| v.to_string()),
        "[a-z \\\\\"/é\u{1F600}\t]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("\"a\\u00e9\\ud83d\\ude00\\n\"".to_string()),
        Just("\"\\ud800\"".to_string()),
        (
            1969i64..2100,
            1i64..13,
            1i64..32,
            0i64..24,
            0i64..60,
            0i64..61,
            0u32..4
        )
            .prop_map(|(y, mo, d, h, mi, s, frac)| {
                let fraction = ["", ".5", ".123", ".123456789"][frac as usize];
                format!("\"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{fraction}\"")
            }),
        Just("\"2020-01-01T10:00:00.250\"".to_string()),
        Just("\"2020-01-01T10:00:00Z\"".to_string()),
        Just("\"2020-01-01\"".to_string()),
        Just("[1, {\"x\": [true]}]".to_string()),
        Just("{}".to_string()),
    ]
}

/// A value of the field's type most of the time, anything else sometimes.
fn value_for(name: &'static str) -> BoxedStrategy<String> {
    let typed: BoxedStrategy<String> = match name {
        "i" | "id" => any::<i64>().prop_map(|v| v.to_string()).boxed(),
        "small" => (-128i64..128).prop_map(|v| v.to_string()).boxed(),
        "u" => any::<u32>().prop_map(|v| v.to_string()).boxed(),
        "f" | "g" => prop_oneof![
            any::<f64>().prop_map(|v| format!("{v:?}")),
            (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
            any::<i32>().prop_map(|v| v.to_string()),
        ]
        .boxed(),
        "b" => any::<bool>().prop_map(|v| v.to_string()).boxed(),
        "s" | "name" => "[a-z \\\\\"/é\u{1F600}\t]{0,12}"
            .prop_map(|s| serde_json::to_string(&s).unwrap())
            .boxed(),
        "ts" | "us" | "at" => (
            1969i64..2100,
            1i64..13,
            1i64..29,
            0i64..24,
            0i64..60,
            0i64..60,
            0usize..4,
        )
            .prop_map(|(y, mo, d, h, mi, s, frac)| {
                let fraction = ["", ".5", ".123", ".123456789"][frac];
                let sep = if frac == 1 { 'T' } else { ' ' };
                format!("\"{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{fraction}\"")
            })
            .boxed(),
        _ => value().boxed(),
    };
    prop_oneof![8 => typed, 1 => Just("null".to_string()), 1 => value()].boxed()
}

fn object(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(names), 0..names.len() + 2)
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|k| (Just(k), value_for(k)))
                .collect::<Vec<_>>()
        })
        .prop_map(|fields| {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            format!("{{{}}}", parts.join(", "))
        })
}

fn record() -> impl Strategy<Value = String> {
    const TOP: &[&str] = &["i", "small", "u", "f", "g", "b", "s", "ts", "us", "other"];
    const NESTED: &[&str] = &["id", "name", "at", "x"];
    (object(TOP), prop::option::of(object(NESTED)), any::<i32>()).prop_map(
        |(top, nested, required)| {
            let mut text = top.trim_end_matches('}').to_string();
            if text.len() > 1 {
                text.push(',');
            }
            if let Some(nested) = nested {
                text.push_str(&format!("\"r\":{nested},"));
            }
            text.push_str(&format!("\"required\":{required}}}"));
            text
        },
    )
}

/// arrow-json's rows with the nested `name` and `at` of `r` made NULL.
fn without_nested_name_and_at(batch: &RecordBatch) -> RecordBatch {
    let r_index = batch.schema().index_of("r").expect("r");
    let r = batch.column(r_index).as_struct();
    let DataType::Struct(fields) = batch.schema().field(r_index).data_type().clone() else {
        unreachable!("r is a struct")
    };
    let children = vec![
        r.column(0).clone(),
        new_null_array(fields[1].data_type(), r.len()),
        new_null_array(fields[2].data_type(), r.len()),
    ];
    let r = StructArray::try_new(fields, children, r.nulls().cloned()).expect("same fields");
    let mut columns = batch.columns().to_vec();
    columns[r_index] = Arc::new(r);
    RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

#[test]
fn unread_fields_take_the_fast_path() {
    let schema = schema();
    let lines = br#"{"i":1,"r":{"id":7,"name":"x","at":"2020-01-01 00:00:00"},"required":1}
{"i":2,"r":null,"required":2}
{"i":3,"r":{"id":8,"name":12,"at":"garbage"},"required":3}"#;
    let mut fast = JsonLines::new(schema.clone(), 8).expect("supported schema");
    let r_index = schema.index_of("r").expect("r");
    fast.skip_fields(&vec![(r_index, vec![0, 1, 2])]);
    let batch =
        concat_batches(&schema, &fast.decode(lines).expect("fast path")).expect("one schema");
    let r = batch.column(r_index).as_struct();
    assert_eq!(
        r.column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values(),
        &[7, 0, 8]
    );
    assert_eq!(r.column(1).null_count(), 3);
    assert_eq!(r.column(2).null_count(), 3);
    assert!(r.is_null(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Fields left unread come out NULL; everything else as arrow-json
    /// reads it. `r.id` is not nullable, so it is read anyway. (A value
    /// of the wrong type in an unread field is not an error here, while
    /// arrow-json, which reads everything, refuses it.)
    #[test]
    fn skipped_fields_are_null_and_the_rest_as_arrow_json(
        lines in prop::collection::vec(record(), 1..8),
    ) {
        let schema = schema();
        let lines = lines.join("\n");
        let mut fast = JsonLines::new(schema.clone(), 3).expect("supported schema");
        let r_index = schema.index_of("r").expect("r");
        fast.skip_fields(&vec![(r_index, vec![0, 1, 2])]);
        if let (Some(batches), Some(slow)) =
            (fast.decode(lines.as_bytes()), arrow(&schema, lines.as_bytes()))
        {
            let fast = concat_batches(&schema, &batches).expect("same schema");
            prop_assert_eq!(fast, without_nested_name_and_at(&slow), "input: {}", lines);
        }
    }

    #[test]
    fn gives_arrow_jsons_rows_or_gives_back(lines in prop::collection::vec(record(), 1..8)) {
        agrees(lines.join("\n").as_bytes())?;
    }

    #[test]
    fn damaged_input_never_panics_and_never_disagrees(
        lines in prop::collection::vec(record(), 1..4),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = lines.join("\n").into_bytes();
        let at = cut.index(bytes.len());
        bytes[at] = byte;
        agrees(&bytes)?;
    }
}

/// The property above would hold vacuously if everything were given back.
#[test]
fn typed_random_records_mostly_take_the_fast_path() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut fast = 0;
    for _ in 0..300 {
        let line = record().new_tree(&mut runner).unwrap().current();
        let schema = schema();
        if let Some(batches) = JsonLines::new(schema.clone(), 8)
            .unwrap()
            .decode(line.as_bytes())
        {
            let fast_rows = concat_batches(&schema, &batches).unwrap();
            assert_eq!(Some(fast_rows), arrow(&schema, line.as_bytes()), "{line}");
            fast += 1;
        }
    }
    assert!(
        fast > 30,
        "only {fast} of 300 records decoded on the fast path"
    );
}

#[test]
fn nexmark_shaped_lines_take_the_fast_path() {
    let lines = br#"{"i":1,"small":-3,"u":7,"f":1.5,"g":2,"b":true,"s":"a \"q\" \u00e9","ts":"2020-01-01 00:00:00.000","us":"2020-01-01T00:00:00.123456","r":{"id":5,"name":null,"at":"1999-12-31 23:59:59.999"},"required":0}
{"i":null,"r":null,"required":-1,"unknown":{"a":[1,2,{"b":null}]}}

{"required":2}
"#;
    assert!(agrees(lines).unwrap());
    let rows: usize = JsonLines::new(schema(), 2)
        .unwrap()
        .decode(lines)
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 3);
}

/// Dropping lines early leaves exactly the rows the filter would keep.
#[test]
fn kept_lines_are_the_rows_a_filter_keeps() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_type", DataType::Int32, true),
        Field::new(
            "bid",
            DataType::Struct(Fields::from(vec![
                Field::new("price", DataType::Int64, true),
                Field::new("url", DataType::Utf8, true),
            ])),
            true,
        ),
        Field::new("note", DataType::Utf8, true),
    ]));
    let lines = br#"{"event_type":0,"bid":null,"note":"person"}
{"event_type":2,"bid":{"price":5,"url":"a"},"note":"first"}
{"bid":{"price":6,"url":"b"},"event_type":1,"note":"late key"}
{"note":"no type","bid":{"price":7,"url":"c"}}
{"event_type":2,"bid":null,"note":"second"}
{"event_type":1,"bid":{"price":8,"url":"d"},"note":"auction"}
{"note":"type last","bid":{"price":9,"url":"e"},"event_type":2}
"#;
    let mut fast = JsonLines::new(schema.clone(), 2).unwrap();
    fast.keep_only(KeepOnly {
        column: 0,
        values: vec![2],
        time_columns: None,
    });
    let kept = concat_batches(&schema, &fast.decode(lines).unwrap()).unwrap();
    let all = arrow(&schema, lines).unwrap();
    let mask =
        datafusion::arrow::compute::kernels::cmp::eq(all.column(0), &Int32Array::new_scalar(2))
            .unwrap();
    let expected = datafusion::arrow::compute::filter_record_batch(&all, &mask).unwrap();
    assert_eq!(kept, expected);
    assert_eq!(kept.num_rows(), 3);

    // With time columns, the other rows are read too: every line is a row,
    // and of one not kept, what comes after the kept column is read only
    // for the time columns (NULL otherwise).
    let mut timed = JsonLines::new(schema.clone(), 2).unwrap();
    timed.keep_only(KeepOnly {
        column: 0,
        values: vec![2],
        time_columns: Some(vec![0, 1]),
    });
    let rows = concat_batches(&schema, &timed.decode(lines).unwrap()).unwrap();
    assert_eq!(rows.num_rows(), 7);
    assert_eq!(rows.column(1), all.column(1));
    let notes = rows.column(2).as_string::<i32>();
    let kept_notes: Vec<Option<&str>> = notes.iter().collect();
    assert_eq!(
        kept_notes,
        [
            None,
            Some("first"),
            None,
            Some("no type"),
            Some("second"),
            None,
            Some("type last")
        ]
    );
}

#[test]
fn timestamps_match_chrono_across_eras() {
    for (text, millis) in [
        ("1970-01-01 00:00:00", 0),
        ("1969-12-31 23:59:59.999", -1),
        ("2000-02-29 12:00:00.5", 951_825_600_500),
        ("2020-01-01 00:00:00.000", 1_577_836_800_000),
    ] {
        assert_eq!(
            timestamp(text.as_bytes(), TimeUnit::Millisecond).unwrap(),
            millis,
            "{text}"
        );
    }
    assert!(timestamp(b"2021-02-29 00:00:00", TimeUnit::Millisecond).is_err());
}

/// `json.ignore-parse-errors` skips a bad line and keeps every good line
/// after it in the same chunk, whichever decoder met the bad line.
#[test]
fn ignoring_parse_errors_keeps_the_lines_after_a_bad_one() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let options = crate::options::Options::new(
        [("json.ignore-parse-errors".to_string(), "true".to_string())]
            .into_iter()
            .collect(),
    );
    let format = super::JsonFormat::from_options(&options).unwrap();
    let chunks: [&[u8]; 4] = [
        b"{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\nbroken\n{\"id\":3}\n{\"id\":4,\"name\":\"d\"}\n",
        b"{\"id\":1}\n{\"id\":\"two\"}\n{\"id\":3}\n{\"id\":4}\n",
        b"not json at all\n{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n{\"id\":4}\n",
        b"{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n{\"id\":4}\n{]\n",
    ];
    for chunk in chunks {
        let mut decoder = format.decoder(schema.clone()).unwrap();
        let batches = decoder.decode_lines(chunk).unwrap();
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .iter()
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .collect();
        let expected: Vec<i64> = if chunk.starts_with(b"not") || chunk.ends_with(b"{]\n") {
            vec![1, 2, 3, 4]
        } else {
            vec![1, 3, 4]
        };
        assert_eq!(ids, expected, "{}", String::from_utf8_lossy(chunk));
    }
}
