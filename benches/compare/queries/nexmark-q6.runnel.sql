-- input: nexmark
-- Nexmark q6, Runnel: the body of benches/nexmark/queries/q6.sql (see its
-- comment for how it differs from Flink's q6, which Flink does not run) over
-- the exported events.
-- check: skip (updating output, which a filesystem JSON sink does not take in Flink)
${NEXMARK_DDL}

${NEXMARK_QUERY}