//! `CURRENT_TIMESTAMP`, `NOW()`, `CURRENT_ROW_TIMESTAMP()`,
//! `LOCALTIMESTAMP`, `UNIX_TIMESTAMP()` and `CURRENT_DATE` read
//! the wall clock per row, as Flink's do in a streaming job: a job that
//! runs for two seconds sees its clock move (DataFusion folds `now()` to
//! the job's start).

use crate::support::run_script;

#[test]
fn the_wall_clock_functions_are_read_as_rows_go_by() {
    let script = "CREATE TABLE ticks (id BIGINT) WITH ('connector' = 'datagen', \
                  'rows-per-second' = '4', 'number-of-rows' = '8', \
                  'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '8');\n\
                  SELECT id, CURRENT_TIMESTAMP, NOW(), LOCALTIMESTAMP, CURRENT_DATE, \
                  CURRENT_ROW_TIMESTAMP(), UNIX_TIMESTAMP() FROM ticks;";
    let (_, rows) = run_script(script, 1);
    assert_eq!(rows.len(), 8, "{rows:?}");
    // Printed as Java's LocalDateTime prints: `.000` and `:00` seconds left out.
    let millis = |text: &str| {
        let text = text.trim_end_matches('Z');
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .and_utc()
            .timestamp_millis()
    };
    let mut clock: Vec<(i64, [i64; 5])> = rows
        .iter()
        .map(|row| {
            let fields: Vec<&str> = row
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(", ")
                .collect();
            assert!(
                fields[1].ends_with('Z') && fields[2].ends_with('Z'),
                "{row}"
            );
            assert!(!fields[3].ends_with('Z'), "{row}");
            assert_eq!(fields[4], &fields[3][..10], "{row}");
            (
                fields[0].parse().unwrap(),
                [
                    millis(fields[1]),
                    millis(fields[2]),
                    millis(fields[3]),
                    millis(fields[5]),
                    // Seconds: over the job's second or more, at least one.
                    fields[6].parse::<i64>().unwrap() * 500,
                ],
            )
        })
        .collect();
    clock.sort();
    let (first, last) = (clock[0].1, clock[7].1);
    for column in 0..5 {
        assert!(
            last[column] - first[column] >= 500,
            "the clock stood still over the job: {rows:?}"
        );
    }
}
