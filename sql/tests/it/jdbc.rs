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
