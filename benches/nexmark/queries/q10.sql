-- Query 10: log to file system (not in the original suite). Every bid
-- written to CSV files partitioned by day and minute (`dt=.../hm=...`
-- directories, as Flink writes them). Flink's partition
-- commit and rolling options are left out (Runnel's filesystem sink has
-- none of them). `runnel bench` points
-- ${OUTPUT_DIR} at a temporary directory.
CREATE TABLE nexmark_q10 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  extra  VARCHAR,
  dt STRING,
  hm STRING
) PARTITIONED BY (dt, hm) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/q10',
  'format' = 'csv'
);

INSERT INTO nexmark_q10
SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, 'yyyy-MM-dd'), DATE_FORMAT(dateTime, 'HH:mm')
FROM bid;
