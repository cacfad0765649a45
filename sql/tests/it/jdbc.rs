//! The jdbc connector against a real PostgreSQL the test starts: a scan,
//! an upsert sink fed an updating query (updates and deletes), an append
//! sink, and lookup joins with and without the partial cache.

use std::sync::Arc;

use runnel_connectors::Connectors;
use runnel_sql::Session;

use crate::postgres::Postgres;
use crate::support::run_script;

fn orders(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("orders.jsonl");
    let rows = [
        (1, "EUR", 2),
        (2, "USD", 3),
        (3, "EUR", 5),
        (4, "CHF", 7),
        (5, "EUR", 1),
        (6, "JPY", 4),
        (7, "USD", 6),
    ];
    let text: String = rows
        .iter()
        .map(|(id, c, a)| format!("{{\"id\": {id}, \"currency\": \"{c}\", \"amount\": {a}}}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn table(name: &str, columns: &str, url: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE {name} ({columns}) WITH ('connector' = 'jdbc', 'url' = '{url}', \
         'table-name' = '{name}', 'username' = 'runnel'{extra});\n"
    )
}

fn rows_of(runtime: &tokio::runtime::Runtime, pg: &Postgres, sql: &str) -> Vec<String> {
    runtime.block_on(async {
        let client = pg.client().await;
        let mut rows: Vec<String> = client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            })
            .collect();
        rows.sort();
        rows
    })
}

#[test]
fn a_postgres_table_is_scanned_written_and_looked_up() {
    let pg = Postgres::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        pg.client()
            .await
            .batch_execute(
                "CREATE TABLE rates (currency TEXT PRIMARY KEY, rate INT, updated TIMESTAMP);
                 INSERT INTO rates VALUES ('EUR', 110, '2020-04-15 08:00:01.5'), ('USD', 90, NULL),
                   ('JPY', 1, '2020-04-15 08:00:03');
                 CREATE TABLE totals (currency TEXT PRIMARY KEY, n BIGINT, total BIGINT);
                 INSERT INTO totals VALUES ('GBP', 9, 99);
                 CREATE TABLE small (currency TEXT PRIMARY KEY, n BIGINT);
                 CREATE TABLE log (id BIGINT, currency TEXT, amount INT);",
            )
            .await
            .unwrap();
    });
    let url = format!("jdbc:postgresql://127.0.0.1:{}/postgres", pg.port);
    let dir = tempfile::tempdir().unwrap();
    let orders = format!(
        "CREATE TABLE orders (id BIGINT, currency STRING, amount INT, proc AS PROCTIME()) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n",
        orders(dir.path()).display()
    );
    let rates = table(
        "rates",
        "currency STRING, rate INT, updated TIMESTAMP(3), PRIMARY KEY (currency) NOT ENFORCED",
        &url,
        "",
    );

    // A bounded scan, on two workers (one reads).
    let (_, scanned) = run_script(&format!("{rates}SELECT * FROM rates"), 2);
    assert_eq!(
        scanned,
        [
            "[EUR, 110, 2020-04-15T08:00:01.500]",
            "[JPY, 1, 2020-04-15T08:00:03]",
            "[USD, 90, null]"
        ]
    );

    // An updating query into a PRIMARY KEY table: upserts, and a delete
    // when a group leaves the HAVING. The row already there stays.
    let totals = table(
        "totals",
        "currency STRING, n BIGINT, total BIGINT, PRIMARY KEY (currency) NOT ENFORCED",
        &url,
        ", 'sink.buffer-flush.max-rows' = '2'",
    );
    let small = table(
        "small",
        "currency STRING, n BIGINT, PRIMARY KEY (currency) NOT ENFORCED",
        &url,
        "",
    );
    run_script(
        &format!(
            "{orders}{totals}{small}EXECUTE STATEMENT SET BEGIN \
             INSERT INTO totals SELECT currency, COUNT(*), SUM(amount) FROM orders GROUP BY currency; \
             INSERT INTO small SELECT currency, COUNT(*) FROM orders GROUP BY currency HAVING COUNT(*) < 2; \
             END"
        ),
        1,
    );
    assert_eq!(
        rows_of(&runtime, &pg, "SELECT * FROM totals"),
        ["CHF,1,7", "EUR,3,8", "GBP,9,99", "JPY,1,4", "USD,2,9"]
    );
    assert_eq!(
        rows_of(&runtime, &pg, "SELECT * FROM small"),
        ["CHF,1", "JPY,1"]
    );

    // Without a primary key, rows are appended.
    let log = table("log", "id BIGINT, currency STRING, amount INT", &url, "");
    run_script(
        &format!(
            "{orders}{log}INSERT INTO log SELECT id, currency, amount FROM orders WHERE amount > 3"
        ),
        2,
    );
    assert_eq!(
        rows_of(&runtime, &pg, "SELECT * FROM log"),
        ["3,EUR,5", "4,CHF,7", "6,JPY,4", "7,USD,6"]
    );

    // Lookup joins: each order meets the rate as it is when it passes.
    for cache in [
        "",
        ", 'lookup.cache' = 'PARTIAL', 'lookup.partial-cache.max-rows' = '2', \
         'lookup.partial-cache.expire-after-write' = '10 min'",
    ] {
        let rates = table(
            "rates",
            "currency STRING, rate INT, updated TIMESTAMP(3), PRIMARY KEY (currency) NOT ENFORCED",
            &url,
            cache,
        );
        let (_, joined) = run_script(
            &format!(
                "{orders}{rates}SELECT o.id, o.amount * r.rate FROM orders AS o \
                 JOIN rates FOR SYSTEM_TIME AS OF o.proc AS r ON o.currency = r.currency"
            ),
            2,
        );
        assert_eq!(
            joined,
            [
                "[1, 220]", "[2, 270]", "[3, 550]", "[5, 110]", "[6, 4]", "[7, 540]"
            ],
            "cache options: {cache}"
        );
        let (_, left) = run_script(
            &format!(
                "{orders}{rates}SELECT o.id, r.rate FROM orders AS o \
                 LEFT JOIN rates FOR SYSTEM_TIME AS OF o.proc AS r \
                 ON o.currency = r.currency AND r.rate > 50"
            ),
            1,
        );
        assert_eq!(
            left,
            [
                "[1, 110]",
                "[2, 90]",
                "[3, 110]",
                "[4, null]",
                "[5, 110]",
                "[6, null]",
                "[7, 90]"
            ]
        );
    }

    // Refused at submit, in one sentence each.
    let refused = |script: String| {
        let mut session = Session::new(Arc::new(Connectors::default()));
        match session.submit_blocking(&script) {
            Ok(_) => panic!("accepted: {script}"),
            Err(error) => error.to_string(),
        }
    };
    let mysql = table(
        "rates",
        "currency STRING, rate INT",
        "jdbc:mysql://127.0.0.1/x",
        "",
    );
    assert!(
        refused(format!("{mysql}SELECT * FROM rates")).contains("only PostgreSQL is supported"),
    );
    let typo = table(
        "rates",
        "currency STRING, rate INT",
        &url,
        ", 'lookup.cache' = 'FULL'",
    );
    assert!(
        refused(format!(
            "{orders}{typo}SELECT o.id FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.proc AS r ON o.currency = r.currency"
        ))
        .contains("'lookup.cache' must be NONE or PARTIAL"),
    );
}

/// Checkpoints of the jdbc connector, with the test playing the engine's
/// part: a scan's position holds the rows it has not given out (a restore
/// goes on with them, not with the table as it is by then), and the sink
/// writes what it buffered when a checkpoint asks, however large its
/// buffer may grow.
#[test]
fn a_jdbc_scan_resumes_from_its_position_and_the_sink_flushes_at_checkpoints() {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use runnel_engine::source::{BatchReader, Poll};

    let pg = Postgres::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        pg.client()
            .await
            .batch_execute(
                "CREATE TABLE many (id BIGINT, v BIGINT);
                 INSERT INTO many SELECT n, n * 2 FROM generate_series(1, 20000) AS n;
                 CREATE TABLE copied (id BIGINT PRIMARY KEY, v BIGINT);",
            )
            .await
            .unwrap();
    });
    let url = format!("jdbc:postgresql://127.0.0.1:{}/postgres", pg.port);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let options = |table: &str, extra: &[(&str, &str)]| {
        let mut pairs: std::collections::BTreeMap<String, String> = [
            ("connector", "jdbc"),
            ("url", url.as_str()),
            ("table-name", table),
            ("username", "runnel"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        pairs.retain(|_, v| !v.is_empty());
        runnel_connectors::options::Options::new(pairs)
    };
    let ids = |batches: &[RecordBatch]| -> Vec<i64> {
        let mut ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        ids.sort_unstable();
        ids
    };
    let drain = |reader: &mut dyn BatchReader| {
        let mut batches = Vec::new();
        for _ in 0..1000 {
            match reader.poll().unwrap() {
                Poll::Batch(batch) => batches.push(batch),
                Poll::Done => return batches,
                Poll::Idle => {}
            }
        }
        panic!("the scan did not end");
    };

    let scan = runnel_connectors::jdbc::source(&options("many", &[]), schema.clone()).unwrap();
    assert!(scan.checkpointable());
    let mut first = scan.reader(0, 1).unwrap();
    let Poll::Batch(given) = first.poll().unwrap() else {
        panic!("no first batch");
    };
    let position = first.checkpoint_position().unwrap().unwrap();
    // The table changes after the checkpoint; the restored scan must not
    // see it.
    runtime.block_on(async {
        pg.client()
            .await
            .batch_execute("DELETE FROM many WHERE id % 2 = 0")
            .await
            .unwrap()
    });
    let mut resumed = scan.reader(0, 1).unwrap();
    resumed.restore_position(&position).unwrap();
    let rest = drain(resumed.as_mut());
    let mut all = ids(&[given]);
    all.extend(ids(&rest));
    all.sort_unstable();
    assert_eq!(all, (1..=20000).collect::<Vec<i64>>());
    // A position taken before the first read reads the table then; one
    // taken at the end reads nothing.
    let mut fresh = scan.reader(0, 1).unwrap();
    let before = fresh.checkpoint_position().unwrap().unwrap();
    let mut late = scan.reader(0, 1).unwrap();
    late.restore_position(&before).unwrap();
    assert_eq!(ids(&drain(late.as_mut())).len(), 10000);
    let end = resumed.checkpoint_position().unwrap().unwrap();
    let mut ended = scan.reader(0, 1).unwrap();
    ended.restore_position(&end).unwrap();
    assert!(drain(ended.as_mut()).is_empty());
    assert!(ended.restore_position(&[]).is_err());
    assert!(ended.restore_position(&[0, 1, 2, 3]).is_err());

    // Partitioned by id: ranges between the bounds dealt to the workers in
    // turn, each read on its own; as in Flink, rows outside the bounds or
    // with a NULL id are not read. The table holds the odd ids now.
    runtime.block_on(async {
        pg.client()
            .await
            .batch_execute("INSERT INTO many VALUES (NULL, 1), (-5, 1), (30000, 1)")
            .await
            .unwrap()
    });
    let partitioned = [
        ("scan.partition.column", "id"),
        ("scan.partition.num", "7"),
        ("scan.partition.lower-bound", "1"),
        ("scan.partition.upper-bound", "20000"),
    ];
    let scan =
        runnel_connectors::jdbc::source(&options("many", &partitioned), schema.clone()).unwrap();
    let odd: Vec<i64> = (1..=20000).filter(|id| id % 2 == 1).collect();
    let read: Vec<Vec<i64>> = (0..2)
        .map(|worker| ids(&drain(scan.reader(worker, 2).unwrap().as_mut())))
        .collect();
    assert!(
        read.iter().all(|ids| !ids.is_empty()),
        "both workers read ranges"
    );
    let mut union: Vec<i64> = read.concat();
    union.sort_unstable();
    assert_eq!(union, odd);
    // A worker stopped after its first batch resumes with the rest of its
    // ranges and no row twice.
    let mut second = scan.reader(1, 2).unwrap();
    let Poll::Batch(given) = second.poll().unwrap() else {
        panic!("no first batch");
    };
    let position = second.checkpoint_position().unwrap().unwrap();
    let mut resumed = scan.reader(1, 2).unwrap();
    resumed.restore_position(&position).unwrap();
    let mut again = ids(&[given]);
    again.extend(ids(&drain(resumed.as_mut())));
    again.sort_unstable();
    assert_eq!(again, read[1]);
    // Through SQL, on two workers.
    let ddl = table(
        "many",
        "id BIGINT, v BIGINT",
        &url,
        ", 'scan.partition.column' = 'id', 'scan.partition.num' = '4', \
         'scan.partition.lower-bound' = '-10', 'scan.partition.upper-bound' = '9'",
    );
    let (_, low) = run_script(&format!("{ddl}SELECT id, v FROM many"), 2);
    assert_eq!(
        low,
        [
            "[-5, 1]", "[1, 2]", "[3, 6]", "[5, 10]", "[7, 14]", "[9, 18]"
        ]
    );
    // All four options or none; an integer column; bounds in order.
    for (extra, error) in [
        (&partitioned[..1], "either all or none"),
        (
            &[
                ("scan.partition.column", "id"),
                ("scan.partition.num", "2"),
                ("scan.partition.lower-bound", "9"),
                ("scan.partition.upper-bound", "1"),
            ][..],
            "is above",
        ),
        (
            &[
                ("scan.partition.column", "nope"),
                ("scan.partition.num", "2"),
                ("scan.partition.lower-bound", "1"),
                ("scan.partition.upper-bound", "9"),
            ][..],
            "not a column",
        ),
    ] {
        let refused = runnel_connectors::jdbc::source(&options("many", extra), schema.clone());
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains(error), "{message}");
    }

    let extra = [
        ("sink.buffer-flush.max-rows", "1000000"),
        ("sink.buffer-flush.interval", "1 h"),
        (runnel_engine::connector::PRIMARY_KEY, "id"),
    ];
    let provider = runnel_connectors::jdbc::sink(&options("copied", &extra), &schema).unwrap();
    assert!(provider.checkpointable());
    let mut sink = provider.sink(0, 1).unwrap();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Int64Array::from(vec![10, 20, 30])),
        ],
    )
    .unwrap();
    sink.write(batch, 0).unwrap();
    assert!(rows_of(&runtime, &pg, "SELECT * FROM copied").is_empty());
    assert!(sink.checkpoint_output(1).unwrap().is_empty());
    assert_eq!(
        rows_of(&runtime, &pg, "SELECT * FROM copied"),
        ["1,10", "2,20", "3,30"]
    );
}
