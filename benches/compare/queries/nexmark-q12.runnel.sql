-- input: nexmark
-- Nexmark q12, Runnel: the body of benches/nexmark/queries/q12.sql (see its
-- comment for how it differs from Flink's) over the exported events.
-- check: skip (processing-time windows: which bids share a window depends on timing)
${NEXMARK_DDL}

${NEXMARK_QUERY}